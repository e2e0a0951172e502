"""How good is a model on text it never saw: bits per UTF-8 byte of whole held-out documents, and the
same number for reference coders (PPMd, xz, a unigram model) given the same training text.

**The model** (``score_documents``, one method everywhere: ``luna eval``, the run summary and
``bench/bench_quality.py``). Each document is scored on its own, after an end-of-text token (the
document boundary the model saw in training, so the first real token is predicted too). Windows of
``context`` tokens start every ``stride`` tokens; each target is scored once, in the first window that
holds it, so every target after the first window has at least ``context - stride`` tokens before it
(the sliding-window evaluation of Press et al. 2021, "Shortformer", and Hugging Face's perplexity
guide). ``stride == context`` is the cheap non-overlapping split; ``context // 2`` (the default) costs
about twice as much and scores what a user's model will do on a long text. Bits per byte =
summed nats / ln 2 / the UTF-8 bytes those targets spell (``lunalm.evaluate.token_byte_lengths``).

**Reference coders**: conditional code length, ``C(train + held-out) - C(train)`` in bits, over the
held-out bytes: what each coder needs for the held-out text once it has learned from the training text.
PPMd (``pyppmd``, variant I; the best of several orders) is the one to beat: a good small language model
should predict held-out text better than a compressor that learned the same corpus in a second.
"""

from __future__ import annotations

import lzma
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

IGNORE_INDEX = -100
PPMD_ORDERS = (4, 6, 8, 10, 12, 16)  # orders tried; the best one is reported
PPMD_MEMORY = 256 << 20  # bytes of model memory (PPMd restarts its model when it fills)
CODER_TRAIN_BYTES = 16 << 20  # at most this much training text (its end) conditions the coders


@dataclass(frozen=True)
class HeldOutScore:
    bits_per_byte: float
    loss: float  # mean nats per scored token
    perplexity: float  # exp(loss), per token: depends on the tokenizer, unlike bits per byte
    accuracy: float  # share of targets that are the model's most likely next token
    tokens: int  # targets scored
    bytes: int  # UTF-8 bytes those targets spell
    documents: int
    method: str  # how it was scored, in words (printed beside the number)

    def to_dict(self) -> dict:
        return asdict(self)


def method_text(context: int, stride: int) -> str:
    """The scoring method in words, printed beside every held-out number."""
    windows = (f"stride {stride}, each token after the first window sees >= {context - stride} earlier tokens"
               if stride < context else f"stride {stride} (no overlap)")
    return f"whole documents, each after an end-of-text token; windows of {context} tokens, {windows}"


def document_windows(ids: Sequence[int], context: int, stride: int) -> list[tuple[list[int], int]]:
    """Windows of one document's ids (``ids[0]`` is the boundary token, never a target).

    Returns ``(window, first)`` pairs: ``window`` holds up to ``context + 1`` ids (inputs ``window[:-1]``,
    labels ``window[1:]``) and the labels before index ``first`` were scored by an earlier window. Every
    target ``ids[1:]`` is scored exactly once.
    """
    if not 1 <= stride <= context:
        raise ValueError(f"stride must be in [1, context={context}], got {stride}")
    n_targets = len(ids) - 1
    if n_targets <= context:
        return [(list(ids), 0)] if n_targets > 0 else []
    windows, scored, start = [], 0, 0
    while scored < n_targets:
        start = min(start, n_targets - context)  # the last window ends exactly at the document's end
        windows.append((list(ids[start:start + context + 1]), scored - start))
        scored = start + context
        start += stride
    return windows


def score_documents(model, documents: Sequence[Sequence[int]], token_bytes, *, context: int, stride: int,
                    batch_size: int = 16, device="cpu", autocast=None) -> HeldOutScore:
    """Sliding-window bits per byte of ``documents`` (token ids, each starting with the boundary token)."""
    import contextlib

    import torch

    from lunalm.evaluate import score_batch

    autocast = autocast or contextlib.nullcontext
    windows = [w for ids in documents for w in document_windows(ids, context, stride)]
    if not windows:
        raise ValueError("no tokens to score: the held-out documents are empty")
    windows.sort(key=lambda pair: len(pair[0]))  # equal lengths batch together without padding
    token_bytes = token_bytes.to(torch.int64)
    nats, n_targets, n_bytes, n_correct = 0.0, 0, 0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in _same_length_batches(windows, batch_size):
                ids = torch.tensor([w for w, _ in batch], dtype=torch.long)  # (B, T + 1)
                labels = ids[:, 1:].clone()  # (B, T)
                for row, (_, first) in enumerate(batch):
                    labels[row, :first] = IGNORE_INDEX
                out = score_batch(model, ids[:, :-1].to(device), labels.to(device), autocast)
                nats += float(out.loss_sum)
                mask = labels != IGNORE_INDEX
                n_correct += int(out.n_correct)
                n_targets += int(mask.sum())
                n_bytes += int(token_bytes[labels[mask]].sum())
    finally:
        model.train(was_training)
    loss = nats / max(1, n_targets)
    return HeldOutScore(bits_per_byte=nats / math.log(2) / max(1, n_bytes), loss=loss,
                        perplexity=math.exp(loss) if loss < 700 else math.inf,
                        accuracy=n_correct / max(1, n_targets), tokens=n_targets, bytes=n_bytes, documents=len(documents),
                        method=method_text(context, stride))


def _same_length_batches(windows, batch_size: int):
    batch: list = []
    for window in windows:
        if batch and (len(batch) == batch_size or len(window[0]) != len(batch[0][0])):
            yield batch
            batch = []
        batch.append(window)
    if batch:
        yield batch


def split_documents(tokens, boundary: int) -> list[list[int]]:
    """A token stream with ``boundary`` between documents (a shard split) -> one id list per document,
    each starting with the boundary token."""
    import numpy as np

    stream = np.asarray(tokens)
    cuts = np.flatnonzero(stream == boundary)
    documents, start = [], 0
    for cut in list(cuts) + [len(stream)]:
        if cut > start:
            documents.append([boundary, *stream[start:cut].tolist()])
        start = cut + 1
    return documents


def first_documents(documents, max_tokens: int) -> list[list[int]]:
    """Whole documents from the start until ``max_tokens`` targets are reached (the one crossing it kept)."""
    kept, targets = [], 0
    for document in documents:  # an iterator is read no further than the last document kept
        kept.append(document)
        targets += len(document) - 1
        if targets >= max_tokens:
            break
    return kept


# --- reference coders -----------------------------------------------------------------------------


def conditional_bits_per_byte(compress, train: bytes, heldout: bytes) -> float:
    """(C(train + held-out) - C(train)) * 8 / held-out bytes for a byte compressor ``compress``."""
    train = train[-CODER_TRAIN_BYTES:]
    return (len(compress(train + heldout)) - len(compress(train))) * 8 / max(1, len(heldout))


def ppmd_bits_per_byte(train: bytes, heldout: bytes, orders: Sequence[int] = PPMD_ORDERS) -> tuple[float, int]:
    """PPMd (variant I) conditional code length: (best bits per byte, its order).

    One pass per order: the coder reads the training text, and what it writes for the held-out text after
    it (to the end of its stream) is the held-out code. That is C(train + held-out) - C(train) but for the
    few bytes that end C(train)'s stream, at half the time of coding the training text twice."""
    import pyppmd

    train = train[-CODER_TRAIN_BYTES:]
    results = []
    for order in orders:
        encoder = pyppmd.Ppmd8Encoder(order, PPMD_MEMORY)
        encoder.encode(train)
        code = len(encoder.encode(heldout)) + len(encoder.flush())
        results.append((code * 8 / max(1, len(heldout)), order))
    return min(results)


def xz_bits_per_byte(train: bytes, heldout: bytes) -> float:
    """xz -9e (LZMA2, 64 MiB dictionary) conditional code length."""
    return conditional_bits_per_byte(lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME),
                                     train, heldout)


def unigram_bits_per_byte(train_ids: Sequence[int], heldout_ids: Sequence[int], vocab_size: int,
                          heldout_bytes: int) -> float:
    """Add-one (Laplace) unigram model over the tokenizer's vocabulary, counted on the training tokens."""
    counts = Counter(int(i) for i in train_ids)
    total = sum(counts.values()) + vocab_size
    bits = -sum(math.log2((counts.get(int(i), 0) + 1) / total) for i in heldout_ids)
    return bits / max(1, heldout_bytes)
