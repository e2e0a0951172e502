"""Sampling from a model with a KV cache, streaming text as it becomes decodable.

The prompt is prefilled once; each new token then costs one single-position forward against the cache.
When the window reaches the model's ``context_length`` it *slides*: the cache is refilled from the last
``context_length // 2`` tokens and decoding continues, so ``max_new_tokens`` is honoured on models with a
short context (the model then sees only the recent half of the text, as it did in training windows).
Generation stops at the end-of-text token (not included in the output) or after ``max_new_tokens``.

Logits processing follows the usual order (as in Hugging Face ``generate``): repetition penalty,
temperature, top-k, top-p. Temperature 0 means greedy decoding and nothing else: the argmax of the raw
logits, no repetition penalty, as Hugging Face ``generate(do_sample=False)`` with default settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from lunalm.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """How to pick each next token. Torch-free so it can live with the other configs."""

    max_new_tokens: int = 200  # tokens to generate at most (the end-of-text token stops earlier)
    temperature: float = 0.8  # divides the logits; 0 = greedy (argmax, no other processing), > 1 flatter
    top_k: int = 50  # sample among the k most likely tokens; 0 = off
    top_p: float = 0.95  # nucleus: smallest set of tokens with this total probability; 1.0 = off
    repetition_penalty: float = 1.0  # CTRL (Keskar et al. 2019): > 1 discourages tokens in context
    seed: int | None = None  # seeds the sampler's torch.Generator; None = fresh randomness each call

    def __post_init__(self):
        problems = _sampling_problems(self)
        if problems:
            raise ConfigError("invalid sampling config: " + "; ".join(problems))


def _sampling_problems(cfg: SamplingConfig) -> list[str]:
    """Every problem with ``cfg`` as 'field: what is allowed (got value)'."""
    def number(value, kind=(int, float)):
        return isinstance(value, kind) and not isinstance(value, bool)

    checks = [
        ("max_new_tokens", number(cfg.max_new_tokens, int) and cfg.max_new_tokens >= 1, "an integer >= 1"),
        ("temperature", number(cfg.temperature) and 0 <= cfg.temperature < float("inf"), "a number >= 0"),
        ("top_k", number(cfg.top_k, int) and cfg.top_k >= 0, "an integer >= 0 (0 = off)"),
        ("top_p", number(cfg.top_p) and 0 < cfg.top_p <= 1, "a number in (0, 1] (1.0 = off)"),
        ("repetition_penalty", number(cfg.repetition_penalty) and 0 < cfg.repetition_penalty
         < float("inf"), "a number > 0 (1.0 = off)"),
        ("seed", cfg.seed is None or (number(cfg.seed, int) and cfg.seed >= 0), "None or an integer >= 0"),
    ]
    return [f"{name}: must be {rule} (got {getattr(cfg, name)!r})" for name, ok, rule in checks if not ok]


# --- logits processing (pure functions on one row of logits) ------------------------------------
def apply_repetition_penalty(logits, context_ids, penalty: float):
    """CTRL's penalty: for tokens already in ``context_ids``, divide positive logits by ``penalty`` and
    multiply negative ones, so either way the token becomes less likely. logits (V,) -> (V,)."""
    if penalty == 1.0 or len(context_ids) == 0:
        return logits
    import torch

    ids = context_ids.unique()
    seen = logits[ids]
    logits = logits.clone()
    logits[ids] = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits


def filter_top_k(logits, k: int):
    """Keep the ``k`` largest logits, set the rest to -inf. (V,) -> (V,)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    threshold = logits.topk(k).values[-1]
    return logits.masked_fill(logits < threshold, float("-inf"))


def filter_top_p(logits, p: float):
    """Nucleus sampling (Holtzman et al. 2020): keep the most likely tokens until their probability
    reaches ``p``; the most likely token always survives. (V,) -> (V,)."""
    import torch

    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(descending=True)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs  # probability mass strictly above each token
    drop_sorted = before >= p
    drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token(logits, context_ids, cfg: SamplingConfig, generator) -> int:
    """Pick one token id from the last position's logits (V,) given the ids already in context."""
    import torch

    if cfg.temperature == 0:  # greedy: the raw argmax, no penalty (do_sample=False)
        return int(logits.argmax())
    logits = apply_repetition_penalty(logits.float(), context_ids, cfg.repetition_penalty)
    logits = filter_top_p(filter_top_k(logits / cfg.temperature, cfg.top_k), cfg.top_p)
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))


# --- the decoding loop ---------------------------------------------------------------------------
def generate_ids(model, prompt_ids: list[int], cfg: SamplingConfig, *,
                 stop_id: int | Iterable[int] | None = None, on_token: Callable[[int], None] | None = None,
                 device=None) -> list[int]:
    """New token ids after ``prompt_ids`` (without the stop token), decoded with a KV cache. ``stop_id``:
    one id or several (a chat template's end of turn besides end-of-text).

    ``on_token`` is called with each new id as soon as it is chosen. The model's train/eval mode is
    restored afterwards, so the training loop can sample mid-run.
    """
    import torch

    if not prompt_ids:
        raise ValueError("prompt_ids must hold at least one token")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed) if cfg.seed is not None else generator.seed()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            stops = {stop_id} if isinstance(stop_id, int) else set(stop_id or ())
            return _decode_loop(model, list(prompt_ids), cfg, stops, on_token, generator, device)
    finally:
        model.train(was_training)


def _decode_loop(model, tokens, cfg, stops: set[int], on_token, generator, device) -> list[int]:
    """The loop itself; ``tokens`` grows in place. The cache holds positions window_start.. of tokens."""
    import torch

    context_length = model.config.context_length
    cache = model.new_kv_cache(1, context_length)
    seen = torch.tensor(tokens, device=device).unique()  # distinct ids in context, for the penalty
    cached = min(len(tokens), context_length)  # a prompt longer than the context keeps its end
    logits = _prefill(model, tokens[-cached:], cache, device)
    new_ids: list[int] = []
    while len(new_ids) < cfg.max_new_tokens:
        token = next_token(logits, seen, cfg, generator)
        if token in stops:
            break
        new_ids.append(token)
        tokens.append(token)
        if on_token is not None:
            on_token(token)
        if len(new_ids) == cfg.max_new_tokens:
            break  # no forward for a token nobody will sample
        if cfg.repetition_penalty != 1.0:
            seen = torch.cat((seen, seen.new_tensor([token]))).unique()
        if cached == context_length:  # window full: slide to the recent half
            keep = max(1, context_length // 2)
            logits, cached = _prefill(model, tokens[-keep:], cache, device), keep
        else:
            step = torch.tensor([[token]], device=device)  # (1, 1)
            logits = model(step, kv_cache=cache, start_pos=cached).logits[0, -1]  # (V,)
            cached += 1
    return new_ids


def _prefill(model, ids: list[int], cache, device):
    """Fill the cache from position 0 with ``ids``; return the last position's logits (V,)."""
    import torch

    input_ids = torch.tensor([ids], device=device)  # (1, T)
    return model(input_ids, kv_cache=cache, start_pos=0).logits[0, -1]


# --- text ----------------------------------------------------------------------------------------
class TextStream:
    """Turns a growing list of token ids into text pieces that never end in a half-decoded character.

    Byte-level BPE can split one UTF-8 character (ğ, an emoji) across tokens; decoding a prefix then ends
    in U+FFFD. We decode all ids so far and emit only the new suffix, holding back trailing U+FFFD until
    the next token completes the character (or :meth:`finish` shows it really is an invalid byte).
    Decoding everything each step costs O(n) per token, negligible next to a forward pass.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        return self._advance(self.tokenizer.decode(self.ids).rstrip("\ufffd"))

    def finish(self) -> str:
        return self._advance(self.tokenizer.decode(self.ids))

    def _advance(self, text: str) -> str:
        if not text.startswith(self.emitted):  # a decoder that rewrote earlier text: wait for it to settle
            return ""
        piece, self.emitted = text[len(self.emitted):], text
        return piece


def generate(model, tokenizer, prompt: str, cfg: SamplingConfig,
             on_text: Callable[[str], None] | None = None, device=None, stop_ids: Iterable[int] = ()) -> str:
    """The continuation of ``prompt`` (prompt not included), streamed piece by piece to ``on_text``.

    The returned text is exactly the concatenation of the streamed pieces. An empty prompt starts
    from the end-of-text token, i.e. at the start of a new document as the model saw them in training.
    """
    stream = TextStream(tokenizer)
    pieces: list[str] = []

    def emit(piece: str) -> None:
        if piece:
            pieces.append(piece)
            if on_text is not None:
                on_text(piece)

    prompt_ids = tokenizer.encode(prompt) or [tokenizer.eot_id]
    generate_ids(model, prompt_ids, cfg, stop_id={tokenizer.eot_id, *stop_ids},
                 on_token=lambda token: emit(stream.push(token)), device=device)
    emit(stream.finish())
    return "".join(pieces)
