"""What went wrong, from one line of output: the error kinds of ``Attempt.error_kind`` and their fixes.

Two kinds of evidence, kept apart on purpose:

* phrases that only ever appear when something failed ("CUDA out of memory", "mat1 and mat2 shapes
  cannot be multiplied", a shell's ``Killed``) count wherever they appear;
* a Python exception line (``SomeError: message`` at the left margin) counts by its class name, and a
  generic class (``RuntimeError``) counts only at the end of a traceback, because programs also print
  things like ``ValueError: ...`` as ordinary log messages.
"""

from __future__ import annotations

import re


def any_word(words: list[str]) -> re.Pattern:
    """A pattern matching any of ``words`` (lower case), grouped by first letter: Python's ``re`` tries the
    branches of an alternation one by one at every position, so ``a(?:lloc|ccumulation)|d(?:type|evice)``
    scans ~2.5x faster than the flat ``alloc|accumulation|dtype|device``."""
    groups: dict[str, list[str]] = {}
    for word in sorted(set(words), key=len, reverse=True):
        groups.setdefault(word[0], []).append(re.escape(word[1:]))
    return re.compile("|".join(f"{re.escape(first)}(?:{'|'.join(rest)})" for first, rest in sorted(groups.items())))


# Cheap first test on the lower-cased line: without any of these words no rule below can match (most log
# lines). Lower-casing once and matching case-sensitively is ~15x faster than re.IGNORECASE here.
HINT_WORDS = ["memory", "alloc", "nan", "inf", "mismatch", "multipl", "mat1", "scalar type", "dtype", "kill",
              "exitcode", "error", "exception", "interrupt"]
_HINT = any_word(HINT_WORDS)

# (kind, pattern) tried in order; the first match wins.
_PHRASES = [
    ("cuda-oom", re.compile(r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory|"
                            r"CUBLAS_STATUS_ALLOC_FAILED|(?:MPS|HIP) backend out of memory|HIP out of memory")),
    ("cpu-oom", re.compile(r"DefaultCPUAllocator: can't allocate memory|std::bad_alloc|"
                           r"Cannot allocate memory|Out of memory: Killed process")),
    ("nan-loss", re.compile(r"\bloss\b.{0,40}?\b(?:is\s+)?(?:nan|inf|infinity)\b|"
                            r"\b(?:nan|inf|non-?finite)\s+(?:loss|gradients?)\b|returned nan values|"
                            r"detected (?:inf|nan)|invalid loss", re.IGNORECASE)),
    ("shape-error", re.compile(r"size mismatch|shapes cannot be multiplied|mat1 and mat2|"
                               r"must match the size of tensor|Expected input batch_size|"
                               r"is invalid for input of size|Sizes of tensors must match")),
    ("dtype-error", re.compile(r"expected scalar type|expected m1 and m2 to have the same dtype|"
                               r"not implemented for '(?:Half|BFloat16|Float|Double|Long|Int|Bool)'|"
                               r"found dtype \w+ but expected|dtype mismatch", re.IGNORECASE)),
    ("killed", re.compile(r"^Killed(?::\s*9)?$|^.{0,80}line \d+:\s+\d+ Killed\b|\bSIGKILL\b|exitcode\s*:\s*-9\b")),
]

# A phrase that is denied is no failure: "no NaN gradients or loss explosion", "ran without CUDA out of memory
# errors", "checks for nan loss" (a report or a README read as a log says what did *not* happen). An
# exception line is never a denial ("RuntimeError: could not ... CUDA out of memory").
_DENIED = re.compile(r"\b(?:no|(?<!could )(?<!did )(?<!can )not|never|without|avoid\w*|prevent\w*|checks? for|"
                     r"guard\w* against|free of)\b"
                     r"[^.;!?]{0,60}$", re.IGNORECASE)

# "torch.OutOfMemoryError: ...", "KeyboardInterrupt", "ModuleNotFoundError: No module named 'x'"
_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Interrupt|Exit|Failure))(?::|$)")
_EXCEPTION_KINDS = {
    "MemoryError": "cpu-oom",
    "KeyboardInterrupt": "keyboard-interrupt",
    "ModuleNotFoundError": "import-error",
    "ImportError": "import-error",
    "FileNotFoundError": "file-not-found",
}

FIXES = {
    "cuda-oom": "Halve the micro-batch and double gradient accumulation (same global batch); then turn on "
                "activation checkpointing, train in bf16/fp16, shorten the context, or use LoRA/QLoRA or a "
                "smaller model. `luna plan --vram` predicts what fits.",
    "cpu-oom": "The process ran out of RAM: stream or memory-map the dataset instead of loading it whole, "
               "use fewer DataLoader workers, a smaller batch or model, or load weights in bf16 "
               "(`torch_dtype=torch.bfloat16`, `low_cpu_mem_usage=True`).",
    "nan-loss": "Lower the learning rate (÷3), add or lengthen warmup, clip gradients at 1.0, and use bf16 "
                "instead of fp16 (or keep fp16 with a GradScaler); check the data for empty or garbage "
                "batches and the labels for out-of-range ids.",
    "keyboard-interrupt": "Stopped by hand: save checkpoints regularly so a run can continue (`luna resume`), "
                          "and plan the budget up front (`luna plan`) so there is no need to stop it.",
    "killed": "Killed by a signal, usually the kernel's OOM killer or a job-time limit: check `dmesg`/the "
              "scheduler log, reduce host memory (smaller batch, fewer workers, streamed data) or request "
              "more time, and checkpoint often enough to resume.",
    "import-error": "A package is missing or has the wrong version: install it into the same environment "
                    "that runs training (`python -m pip install ...`) and pin versions in requirements.",
    "shape-error": "Tensor shapes disagree: check that the tokenizer's vocabulary matches the model's "
                   "embedding size, that the context length matches the data windows, and that a checkpoint "
                   "was saved from the same architecture.",
    "dtype-error": "Mixed dtypes: run the forward pass under autocast (bf16/fp16) instead of casting by hand, "
                   "keep labels as int64, and do not run half precision on CPU.",
    "file-not-found": "A path does not exist where the script ran: use absolute paths or paths relative to "
                      "the script, and check the data, tokenizer and checkpoint locations before training.",
    "other-exception": "Read the traceback's last frame in your own code; rerun the failing step on a tiny "
                       "batch (batch 1, a few steps) to reproduce it in seconds.",
}


def exception_name(line: str) -> str | None:
    """The exception class of a line like ``torch.OutOfMemoryError: CUDA out of memory...``, else None."""
    match = _EXCEPTION.match(line)
    return match.group(1) if match else None


def classify_line(line: str, in_traceback: bool = False, lower: str | None = None) -> str | None:
    """The error kind a stripped output line shows (one of ``attempt.ERROR_KINDS``), or None.

    ``lower``: ``line.lower()`` when the caller has it already."""
    if not _HINT.search(line.lower() if lower is None else lower):
        return None
    for kind, pattern in _PHRASES:
        match = pattern.search(line)
        if match and (exception_name(line) or not _DENIED.search(line, 0, match.start())):
            return kind
    name = exception_name(line)
    if name is None:
        return None
    if name in _EXCEPTION_KINDS:
        return _EXCEPTION_KINDS[name]
    return "other-exception" if in_traceback else None


def status_for(kind: str) -> str:
    """The registry status a failure of this kind ends a run with."""
    return {"cuda-oom": "oom", "cpu-oom": "oom", "nan-loss": "diverged",
            "keyboard-interrupt": "interrupted"}.get(kind, "crashed")
