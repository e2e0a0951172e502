"""What every export shares: reading the checkpoint, refusing unsafe outputs, writing atomically.

Nothing is ever half-written: a directory export is filled in a hidden temporary sibling
(``.tmp-OUT-<hex>``) and renamed into place; a file export is written to ``.OUT.tmp-<hex>`` and
``os.replace``-d over the name. Both live next to OUT, on the same filesystem, so the rename is atomic;
on any error the temporary is removed and OUT is untouched.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lunalm.errors import LunaError
from lunalm.train.checkpoint import finish_file, hidden_sibling, install_directory

# --dtype choices: the name on the command line -> the torch dtype's name.
DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}

# Sampling defaults written into generation_config.json and the Ollama Modelfile: those of
# `luna generate` (lunalm.generate.SamplingConfig, with the CLI's repetition penalty of 1.1).
SAMPLING = {"temperature": 0.8, "top_k": 50, "top_p": 0.95, "repetition_penalty": 1.1}


class ExportError(LunaError):
    """An export that cannot be done as asked (the output exists, the tokenizer has no such format...)."""


@dataclass(frozen=True, kw_only=True)
class Source:
    """A verified checkpoint, loaded on the CPU: what every exporter reads."""

    directory: Path  # the checkpoint folder (best/, final/, step-N/)
    model: object  # lunalm.model.LunaLM, float32, eval mode
    tokenizer: object  # lunalm.tokenizer.Tokenizer
    meta: dict  # lunalm.json (run config, step, metrics); {} for a plain HF Llama folder

    @property
    def name(self) -> str:
        """The run's name when the checkpoint knows it, else the checkpoint folder's."""
        config = self.meta.get("config") if isinstance(self.meta.get("config"), dict) else {}
        return str(config.get("name") or self.directory.name)

    @property
    def hf_model_type(self) -> str | None:
        """The Hugging Face model_type of a ``luna finetune`` checkpoint (gpt2, llama...), None for LunaLM."""
        model = self.meta.get("model") if isinstance(self.meta.get("model"), dict) else {}
        return str(model.get("model_type") or "?") if model.get("kind") == "hf" else None

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())  # tied weights counted once

    @property
    def example_prompt(self) -> str:
        """A prompt in the model's own language for the usage shown: the run's first sample prompt (given,
        or the opening of a held-out document that the run's samples.md shows in bold), else "Ankara'da"."""
        config = self.meta.get("config") if isinstance(self.meta.get("config"), dict) else {}
        given = (config.get("train") or {}).get("sample_prompts") if isinstance(config.get("train"), dict) else None
        if given and isinstance(given, (list, tuple)) and isinstance(given[0], str) and given[0].strip():
            return given[0].strip()
        samples = self.directory.parent.parent / "samples.md"  # runs/NAME/checkpoints/best -> runs/NAME
        try:
            with open(samples, encoding="utf-8") as handle:
                for line in itertools.islice(handle, 50):
                    if line.startswith("**") and "**" in line[2:]:
                        prompt = line[2:line.index("**", 2)].strip()
                        if prompt and '"' not in prompt and len(prompt) <= 60:
                            return prompt
        except (OSError, UnicodeDecodeError):
            pass
        return "Ankara'da"


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    """What an export wrote, for the CLI to report."""

    path: Path  # the directory (hf) or .gguf file written
    format: str  # "hf" | "gguf"
    dtype: str  # a key of DTYPES
    n_parameters: int
    size_bytes: int  # on disk, all files written
    notes: list[str] = field(default_factory=list)  # caveats the user should read
    modelfile: Path | None = None  # gguf: the Ollama Modelfile written beside it (OUT's stem + .Modelfile)
    modelfile_text: str = ""
    example_prompt: str = "Ankara'da"  # in the model's language (``Source.example_prompt``), for the usage shown


def load_source(checkpoint: str | Path, trust_unverified: bool = False) -> Source:
    """Load and verify a lunalm checkpoint (or an unverified HF Llama folder) for export.

    A missing path, a run folder, a foreign or damaged folder raise the checkpoint reader's own
    ``CheckpointError`` (a LunaError) with a message that says what to pass instead.
    """
    from lunalm.train.checkpoint import load_checkpoint

    model, tokenizer, meta = load_checkpoint(Path(checkpoint), device="cpu", trust_unverified=trust_unverified)
    model.eval()
    return Source(directory=Path(checkpoint), model=model, tokenizer=tokenizer, meta=meta)


def check_dtype(dtype: str, allowed: tuple[str, ...], what: str) -> None:
    if dtype not in allowed:
        raise ExportError(f"--dtype {dtype}: {what} export writes {' or '.join(allowed)}; pick one of them.")


def check_output(out: Path, *, force: bool, kind: str, source: Path) -> None:
    """Refuse an OUT that would lose data: a non-empty folder or existing file without ``force``, a path
    of the wrong kind, or one that holds the checkpoint itself. ``kind`` is "dir" or "file"."""
    out_abs, source_abs = out.resolve(), source.resolve()
    if out_abs == source_abs or out_abs in source_abs.parents:
        raise ExportError(f"{out} holds the checkpoint being exported; write the export somewhere else.")
    if not out.exists() and not out.is_symlink():
        return
    if kind == "dir" and not out.is_dir():
        raise ExportError(f"{out} exists and is a file; pass a new or empty folder for the export.")
    if kind == "file" and out.is_dir():
        raise ExportError(f"{out} is a folder; pass a file name such as {out / 'model.gguf'}.")
    if kind == "dir" and not any(out.iterdir()):
        return  # an empty folder is fine to fill
    if not force:
        what = "is not empty" if kind == "dir" else "exists"
        raise ExportError(f"{out} {what}; pass --force to replace it, or choose another output path.")


def write_directory(out: Path, fill: Callable[[Path], None]) -> None:
    """Call ``fill(temp)`` on a fresh hidden sibling of ``out``, then rename it to ``out``.

    An existing ``out`` (already allowed by :func:`check_output`) is moved aside first and deleted only
    after the new folder is in place, so a failure at any point leaves either the old or the new one.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = hidden_sibling(out, ".tmp-")
    with _staged(temp, out):
        temp.mkdir()
        fill(temp)
        for path in temp.rglob("*"):  # on disk before the rename makes them visible under OUT
            if path.is_file():
                finish_file(path)
        install_directory(temp, out)


def write_file(out: Path, fill: Callable[[Path], None]) -> None:
    """Call ``fill(temp)`` to write a hidden sibling file of ``out``, fsync it, then replace ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = hidden_sibling(out, ".", suffix=".tmp")
    with _staged(temp, out):
        fill(temp)
        finish_file(temp)
        os.replace(temp, out)


@contextlib.contextmanager
def _staged(temp: Path, out: Path):
    """Remove the half-written ``temp`` on any failure; disk errors become one clear ExportError."""
    try:
        yield
    except OSError as error:
        _remove(temp)
        raise ExportError(f"could not write {out} ({error}); check that its folder is writable and has "
                          "free space, then try again.") from error
    except BaseException:
        _remove(temp)
        raise


def size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            path.unlink()
        except OSError:
            pass
