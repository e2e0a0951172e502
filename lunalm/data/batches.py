"""Training windows over a flat token stream, a resumable shuffling sampler, and fixed eval batches.

A window is ``context_length + 1`` consecutive tokens ``w``; the model reads ``inputs = w[:-1]`` and is
scored on ``labels = w[1:]``, so label ``t`` is the token that follows input ``t`` in the text. Shifting
by slicing (never ``torch.roll``) means the last label is the real next token, not the window's first.
Windows start every ``stride`` tokens (default: ``context_length``, so in the first epoch each token after
the first is a target exactly once; the < context_length tokens after the last full window are not used).
Later epochs move every window by one random offset below the stride (``WindowSampler``): the tokens
before the offset are not targets then, and the last window may overlap the one before it.
Stride windows are always full, so they need no padding; wherever padding or masking is needed
(instruction data, ragged batches) the label is ``IGNORE_INDEX`` (-100), which
``torch.nn.functional.cross_entropy`` skips by default.

Everything here is numpy; torch is imported only where tensors are produced.
"""

from __future__ import annotations

import numpy as np

from lunalm.errors import DataError

IGNORE_INDEX = -100  # label of padded / masked positions; cross_entropy(ignore_index=-100) skips them


WIDTH_MULTIPLE = 8  # trimmed widths are rounded up to this: fewer distinct shapes (compile, tensor cores)


def scored_widths(labels, block: int) -> list[int]:
    """For each run of ``block`` rows of ``labels`` (B, T): how many leading columns a forward pass needs.

    Everything after the last column holding a target (label != -100) in any row of the block is padding
    that no loss reads and that a causal model's earlier positions never see, so cutting it changes no
    loss and no gradient. Widths are rounded up to ``WIDTH_MULTIPLE`` (at most T); one host sync in all."""
    return scored_layout(labels, block)[0]


def scored_layout(labels, block: int) -> tuple[list[int], list[bool]]:
    """(``scored_widths``, whether every label of the block is scored) for each block, in one host sync."""
    import torch

    T = labels.shape[1]
    scored = labels != IGNORE_INDEX  # (B, T)
    blocks = scored.split(block)
    columns = torch.stack([rows.any(0) for rows in blocks])  # (pieces, T)
    positions = torch.arange(1, T + 1, device=labels.device)
    last = (columns * positions).amax(1)  # 1-based index of the last scored column, 0 if none
    full = torch.stack([rows.all() for rows in blocks])  # (pieces,)
    pairs = torch.stack((last, full.long()), dim=1).tolist()  # (pieces, 2) on the host
    widths = [min(T, max(1, -(-width // WIDTH_MULTIPLE)) * WIDTH_MULTIPLE) for width, _ in pairs]
    return widths, [bool(all_scored) for _, all_scored in pairs]


def window_starts(n_tokens: int, context_length: int, stride: int | None = None) -> np.ndarray:
    """Start offsets of every full window of ``context_length + 1`` tokens, ``stride`` apart."""
    stride = context_length if stride is None else stride
    if context_length < 1 or stride < 1:
        raise DataError(f"context_length and stride must be positive, got {context_length} and {stride}.")
    span = context_length + 1
    if n_tokens < span:
        raise DataError(f"The token data has {n_tokens} tokens, fewer than one window of context_length "
                        f"{context_length} + 1; use a smaller context_length or more text.")
    n_windows = (n_tokens - span) // stride + 1
    return np.arange(n_windows, dtype=np.int64) * stride  # (n_windows,)


def make_example(tokens, start: int, context_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels), each (T,) int64, from ``w = tokens[start : start + T + 1]``."""
    window = np.asarray(tokens[start:start + context_length + 1], dtype=np.int64)  # (T + 1,)
    assert len(window) == context_length + 1, f"window at {start} runs past the end of the tokens"
    return window[:-1], window[1:]


def stack_examples(tokens, starts, context_length: int):
    """int64 torch tensors (inputs, labels), each (B, T), for the windows starting at ``starts``."""
    import torch

    pairs = [make_example(tokens, int(start), context_length) for start in starts]
    inputs = np.stack([p[0] for p in pairs])  # (B, T)
    labels = np.stack([p[1] for p in pairs])  # (B, T)
    return torch.from_numpy(inputs), torch.from_numpy(labels)


class WindowSampler:
    """Shuffled windows, epoch after epoch, reproducible from (seed, epoch, position).

    Each epoch visits every window once in the order ``default_rng([seed, epoch]).permutation``; a
    batch that runs past the end of an epoch continues with the next epoch's order. Only ``epoch`` and
    ``position`` change, so ``state_dict()`` (plain ints) is all a checkpoint needs to resume exactly.

    Every epoch after the first moves all its windows by one offset in [0, stride), drawn from
    ``default_rng([seed, epoch, 1])`` (a window that would run past the end starts at the last full
    window instead; ``shift=False`` keeps the same windows every epoch). A token then sits at another
    place in its window, after other context, each time the text comes round, instead of the same
    windows being repeated pass after pass. Held-out bits per byte at the same steps of the CPU plans
    (nano, 128-token windows; seeds 1337, then 2024):

    ===================================================  ================  ================
    plan (passes over the text)                          same windows      shifted
    ===================================================  ================  ================
    speeches, 15 minutes (16, AdamW)                     1.4734            1.4436 (-2.0 %)
    small corpus, 3 minutes (16, AdamW)                  2.0297, 2.0696    2.0067, 2.0329
    nutuk-en (10, Muon)                                  1.5099            1.5032
    speeches, 3 minutes (7, Muon)                        1.4509, 1.4483    1.4476, 1.4452
    Azerbaijani rap lyrics (5, Muon)                     1.9546, 1.9776    1.9505, 1.9743
    ===================================================  ================  ================
    """

    def __init__(self, tokens, context_length: int, stride: int | None = None, seed: int = 1337,
                 shift: bool = True):
        self.tokens = tokens
        self.context_length = context_length
        self.starts = window_starts(len(tokens), context_length, stride)  # (n_windows,)
        self.stride = context_length if stride is None else stride
        self.shift = shift
        self.last_start = len(tokens) - context_length - 1  # the last window that fits
        self.seed = seed
        self.epoch = 0  # epochs fully consumed
        self.position = 0  # windows consumed in the current epoch
        self._order_epoch, self._order = -1, np.empty(0, np.int64)

    @property
    def n_windows(self) -> int:
        return len(self.starts)

    @property
    def epochs_completed(self) -> float:
        """Fractional epochs consumed, e.g. 2.25 — compare with an ``--epochs`` budget."""
        return self.epoch + self.position / self.n_windows

    def next_batch(self, batch_size: int):
        """(inputs, labels): int64 tensors of shape (batch_size, context_length)."""
        return stack_examples(self.tokens, self.next_starts(batch_size), self.context_length)

    def next_starts(self, batch_size: int) -> np.ndarray:
        """The next ``batch_size`` window offsets, advancing the position (and epoch at its end)."""
        if batch_size < 1:
            raise DataError(f"batch_size must be positive, got {batch_size}.")
        taken = []
        while batch_size > 0:
            order = self._epoch_order()
            take = min(batch_size, self.n_windows - self.position)
            starts = self.starts[order[self.position:self.position + take]]
            shift = self._epoch_shift()
            taken.append(np.minimum(starts + shift, self.last_start) if shift else starts)
            self.position += take
            batch_size -= take
            if self.position == self.n_windows:
                self.epoch, self.position = self.epoch + 1, 0
        return np.concatenate(taken)  # (batch_size,)

    def _epoch_order(self) -> np.ndarray:
        """Window permutation of the current epoch; [seed, epoch] seeding avoids seed+epoch collisions."""
        if self._order_epoch != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order, self._order_epoch = rng.permutation(self.n_windows), self.epoch
        return self._order

    def _epoch_shift(self) -> int:
        """Offset of every window of the current epoch: 0 in the first, then one draw in [0, stride)."""
        if self.epoch == 0 or not self.shift or self.stride < 2:
            return 0
        return int(np.random.default_rng([self.seed, self.epoch, 1]).integers(0, self.stride))

    def state_dict(self) -> dict[str, int]:
        return {"seed": int(self.seed), "epoch": int(self.epoch), "position": int(self.position),
                "n_windows": int(self.n_windows)}

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state_dict()``; refuses a state recorded over different windows."""
        if int(state["n_windows"]) != self.n_windows:
            raise DataError(f"The saved sampler state covers {state['n_windows']} windows but the data "
                            f"now has {self.n_windows}; resume with the same data, context_length and "
                            "stride, or start a new run.")
        if not 0 <= int(state["position"]) < self.n_windows:
            raise DataError(f"The saved sampler position {state['position']} is out of range; the "
                            "checkpoint's sampler state is corrupt.")
        self.seed, self.epoch, self.position = int(state["seed"]), int(state["epoch"]), int(state["position"])


def eval_starts(n_tokens: int, context_length: int, n_windows: int) -> np.ndarray:
    """Up to ``n_windows`` evenly spaced, non-overlapping window starts covering the whole split."""
    starts = window_starts(n_tokens, context_length)  # validates the size
    n_windows = min(n_windows, len(starts))  # never more windows than fit without overlap
    last = n_tokens - context_length - 1  # the last valid start
    if n_windows == 1:
        return np.zeros(1, dtype=np.int64)
    # spacing last / (n - 1) >= context_length because n <= (n_tokens - 1) // context_length
    return (np.arange(n_windows, dtype=np.int64) * last) // (n_windows - 1)  # (n_windows,)


def fixed_eval_batches(tokens, context_length: int, batch_size: int, n_batches: int) -> list:
    """The same validation batches on every call: a list of (inputs, labels), each (B, T) int64.

    Windows are evenly spaced over the split and never overlap (no token is scored twice). When the
    split holds fewer than ``batch_size * n_batches`` windows you get fewer, and the last batch may be
    smaller than ``batch_size``.
    """
    if batch_size < 1 or n_batches < 1:
        raise DataError(f"batch_size and n_batches must be positive, got {batch_size} and {n_batches}.")
    starts = eval_starts(len(tokens), context_length, batch_size * n_batches)
    return [stack_examples(tokens, starts[i:i + batch_size], context_length)
            for i in range(0, len(starts), batch_size)]
