"""Sample prompts taken from the corpus itself: the first words of held-out documents.

Fixed prompts in one language are wrong for every other corpus (an English corpus got Turkish prompts),
and prompts from training text show memorisation rather than learning. The beginnings of validation
documents are in the corpus's own language and style and were never trained on.
"""

from __future__ import annotations

import re

from lunalm.config import DEFAULT_PROMPTS

N_PROMPTS = 4
PROMPT_WORDS = 4  # words per prompt: enough to set a topic, short enough to leave room to continue
PROMPT_CHARS = 40


def corpus_prompts(data, n: int = N_PROMPTS) -> tuple[str, ...]:
    """Up to ``n`` prompts from the validation split (else the training split) of ``data``'s shards;
    the built-in Turkish prompts only when there is no text at all (instruction data)."""
    shards = getattr(data, "shards", None)
    if shards is None:
        return DEFAULT_PROMPTS
    prompts: list[str] = []
    for split in ("val", "train"):
        if shards.n_tokens(split):
            prompts += [p for p in _beginnings(shards.split(split), data.tokenizer, n) if p not in prompts]
        if len(prompts) >= n:
            break
    return tuple(prompts[:n]) or DEFAULT_PROMPTS


def _beginnings(tokens, tokenizer, n: int, scan_tokens: int = 200_000, head_tokens: int = 64) -> list[str]:
    """First words of documents spread over the first ``scan_tokens`` tokens of a split."""
    import numpy as np

    stream = np.asarray(tokens[: min(len(tokens), scan_tokens)])
    starts = [0] + [int(i) + 1 for i in np.flatnonzero(stream == tokenizer.eot_id)]
    starts = [s for s in starts if s < len(stream)]
    step = max(1, len(starts) // n)
    prompts = []
    spread = starts[::step]
    # The tail of a long document may begin mid-sentence: starts of sentences first, spread over the split,
    # then from anywhere in it, and only then the others.
    for candidates, sentence_only in ((spread, True), (starts, True), (spread, False)):
        for start in candidates:
            head = stream[start:start + head_tokens]
            ends = np.flatnonzero(head == tokenizer.eot_id)  # a short document ends inside the head
            head = head[:ends[0]] if len(ends) else head
            text = tokenizer.decode(head.tolist(), skip_special_tokens=True)
            prompt = first_words(text)
            if prompt and prompt not in prompts and (not sentence_only or not prompt[0].islower()):
                prompts.append(prompt)
            if len(prompts) == n:
                return prompts
    return prompts


def first_words(text: str, words: int = PROMPT_WORDS, max_chars: int = PROMPT_CHARS) -> str:
    """The first ``words`` words of the first non-empty line, cut at a word boundary within ``max_chars``
    (no trailing space: byte-level BPE joins a space to the word after it, so the model adds it)."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    kept = []
    for word in re.split(r"\s+", line)[:words]:
        if len(" ".join(kept + [word])) > max_chars:
            break
        kept.append(word)
    return " ".join(kept)
