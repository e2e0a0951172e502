"""Held-out metrics of a language model: loss, perplexity, token accuracy and bits per byte.

Every metric is a ratio of totals over *all* target tokens of *all* batches (sum of losses / sum of
targets), never a mean of per-batch means: batches with more ``-100`` labels (masked prompts, padding)
must not weigh as much as full ones.

Bits per byte (BPB) is the number that compares runs with different tokenizers: the summed loss converted
to bits, divided by the UTF-8 bytes of the text those targets encode,
``BPB = (sum of nats / ln 2) / target bytes`` (as in the GPT-2 / The Pile evaluations). A tokenizer with
longer tokens has a higher loss per token but fewer tokens per byte; BPB cancels that out.

Target bytes come from one of two sources:

* exact: ``token_bytes``, a (V,) tensor holding each token id's UTF-8 byte length (from
  :func:`token_byte_lengths`), summed over the actual target ids;
* approximate: ``n_targets * bytes_per_token``, where ``bytes_per_token`` is the split's bytes/tokens
  ratio from the token cache's ``meta.json``. Exact in expectation when the evaluated windows are a
  fair sample of the split, and free (no tokenizer needed).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Callable, ContextManager

import torch

IGNORE_INDEX = -100  # labels that are not scored (same value as lunalm.data.batches)


@dataclass(frozen=True)
class EvalResult:
    loss: float  # mean nats per target token over every target evaluated
    perplexity: float  # exp(loss); inf when that overflows a float
    accuracy: float  # fraction of targets whose argmax prediction equals the label
    bits_per_byte: float  # summed loss in bits / UTF-8 bytes of the targets
    tokens: int  # target tokens evaluated (labels != -100)

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate(model, batches: list[tuple[torch.Tensor, torch.Tensor]], *,
             bytes_per_token: float | None = None, token_bytes: torch.Tensor | None = None,
             device="cpu", autocast: Callable[[], ContextManager] | None = None) -> EvalResult:
    """Score ``model`` on fixed (inputs, labels) batches, each (B, T) int64 with labels already shifted.

    ``token_bytes`` (exact) wins over ``bytes_per_token`` (the split's ratio); one of them is required.
    ``autocast`` is a factory of a context manager, e.g. ``lambda: torch.autocast("cuda", torch.bfloat16)``;
    the loss itself is always summed in float32 by the model. The model runs in eval mode (no dropout)
    and is put back in the mode it was in, so the training loop can call this mid-run.
    """
    if token_bytes is None and bytes_per_token is None:
        raise ValueError("evaluate needs bytes_per_token (the split's bytes/tokens ratio) or token_bytes")
    autocast = autocast or contextlib.nullcontext
    was_training = model.training
    model.eval()
    try:
        totals = _score_batches(model, batches, device, autocast, token_bytes)
    finally:
        model.train(was_training)
    loss_sum, n_targets, n_correct, n_bytes = (t.item() for t in totals)
    if n_targets == 0:
        raise ValueError("evaluate got no target tokens (every label is -100 or there are no batches)")
    if token_bytes is None:
        n_bytes = n_targets * bytes_per_token
    return _result(loss_sum, int(n_targets), int(n_correct), float(n_bytes))


def _score_batches(model, batches, device, autocast, token_bytes):
    """Totals (loss nats, targets, correct, target bytes) as 0-d tensors on ``device``.

    Accumulating on the device avoids one host sync per batch; float64 keeps the loss sum exact enough
    that the order of batches does not show in the result.
    """
    device = torch.device(device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    n_targets = torch.zeros((), dtype=torch.int64, device=device)
    n_correct = torch.zeros((), dtype=torch.int64, device=device)
    n_bytes = torch.zeros((), dtype=torch.int64, device=device)
    if token_bytes is not None:
        token_bytes = token_bytes.to(device=device, dtype=torch.int64)
    for inputs, labels in batches:
        inputs = inputs.to(device, non_blocking=True)  # (B, T)
        labels = labels.to(device, non_blocking=True)  # (B, T)
        out = score_batch(model, inputs, labels, autocast)
        scored = labels != IGNORE_INDEX  # (B, T)
        loss_sum += out.loss_sum.double()
        n_targets += out.n_targets
        n_correct += out.n_correct
        if token_bytes is not None:
            n_bytes += token_bytes[labels[scored]].sum()
    return loss_sum, n_targets, n_correct, n_bytes


def score_batch(model, inputs: torch.Tensor, labels: torch.Tensor, autocast=contextlib.nullcontext):
    """``model(inputs, labels)`` as evaluation needs it, without gradients: a ModelOutput with
    ``loss_sum``, ``n_targets`` and ``n_correct`` (labels that were the largest logit). A lunalm model
    scores without (B, T, V) logits (``score_only``); any other model's logits are counted here."""
    with torch.no_grad(), autocast():
        if getattr(model, "supports_score_only", False):
            out = model(inputs, labels=labels, score_only=True)
        else:
            out = model(inputs, labels=labels)
    if out.n_correct is not None:
        return out
    return out._replace(n_correct=(out.logits.argmax(dim=-1) == labels)[labels != IGNORE_INDEX].sum())


def _result(loss_sum: float, n_targets: int, n_correct: int, n_bytes: float) -> EvalResult:
    loss = loss_sum / n_targets
    try:
        perplexity = math.exp(loss)
    except OverflowError:  # loss > ~709 nats: a diverged model, not an error
        perplexity = math.inf
    bits_per_byte = (loss_sum / math.log(2)) / n_bytes if n_bytes > 0 else math.nan
    return EvalResult(loss=loss, perplexity=perplexity, accuracy=n_correct / n_targets,
                      bits_per_byte=bits_per_byte, tokens=n_targets)


def token_byte_lengths(tokenizer) -> torch.Tensor:
    """(V,) int64: the UTF-8 bytes each token id stands for, for exact bits per byte.

    Special tokens (end-of-text, padding, unk) count 0 bytes: they are not text. Byte-level BPE tokens
    are read through the byte alphabet (one character = one byte) instead of decoding, because a token
    holding part of a multi-byte character decodes alone to U+FFFD (3 bytes) instead of its 1-2 bytes.
    SentencePiece byte-fallback tokens (``<0x0A>``) are one byte. Anything else is decoded alone; for
    tokenizers whose decoder strips a leading "▁"-space from the sequence, that space is added back.
    Accepts a ``lunalm.tokenizer.Tokenizer`` or a plain ``tokenizers.Tokenizer``.
    """
    inner = getattr(tokenizer, "inner", tokenizer)
    special = {i for i, added in inner.get_added_tokens_decoder().items() if added.special}
    byte_alphabet = _byte_alphabet() if _has_byte_level_decoder(inner) else None
    lengths = torch.zeros(inner.get_vocab_size(with_added_tokens=True), dtype=torch.int64)
    for token_id in range(len(lengths)):
        token = inner.id_to_token(token_id)
        if token_id in special or token is None:
            continue
        lengths[token_id] = _token_length(inner, token_id, token, byte_alphabet)
    return lengths


def padded_token_bytes(tokenizer, vocab_size: int) -> torch.Tensor:
    """``token_byte_lengths`` for a model whose embedding has ``vocab_size`` rows (padded to a multiple of
    64): the padding ids spell 0 bytes."""
    lengths = token_byte_lengths(tokenizer)
    padded = torch.zeros(max(vocab_size, len(lengths)), dtype=lengths.dtype)
    padded[: len(lengths)] = lengths
    return padded


def _token_length(inner, token_id: int, token: str, byte_alphabet: set[str] | None) -> int:
    if byte_alphabet is not None and all(char in byte_alphabet for char in token):
        return len(token)
    if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        return 1  # SentencePiece byte fallback
    text = inner.decode([token_id], skip_special_tokens=False)
    if token.startswith("▁") and not text.startswith(" "):
        text = " " + text  # Metaspace decoders drop the sequence's first space
    return len(text.encode("utf-8"))


def _has_byte_level_decoder(inner) -> bool:
    decoder = json.loads(inner.to_str()).get("decoder") or {}
    parts = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
    return any(part.get("type") == "ByteLevel" for part in parts)


def _byte_alphabet() -> set[str]:
    """The 256 characters byte-level BPE uses to spell bytes (GPT-2's bytes-to-unicode table)."""
    from tokenizers import pre_tokenizers

    return set(pre_tokenizers.ByteLevel.alphabet())
