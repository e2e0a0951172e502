"""Exporting a checkpoint to ecosystem formats (``luna export CKPT --to hf/gguf OUT``).

* ``hf``: a Hugging Face folder (config, safetensors, tokenizer files, generation config) that
  ``transformers.AutoModelForCausalLM`` / ``AutoTokenizer`` load as they stand (:mod:`lunalm.export.hf`).
* ``gguf``: one ``.gguf`` file for llama.cpp and Ollama, plus an Ollama ``Modelfile`` beside it
  (:mod:`lunalm.export.gguf`; needs the ``gguf`` package).

Both read a verified checkpoint and write atomically: an interrupted export leaves nothing behind, and
an existing output is replaced only with ``force``.
"""

from __future__ import annotations

from pathlib import Path

from lunalm.export.common import DTYPES, ExportError, ExportResult, Source, load_source

FORMATS = ("hf", "gguf")

__all__ = ["DTYPES", "FORMATS", "ExportError", "ExportResult", "Source", "export_checkpoint", "load_source"]


def export_checkpoint(checkpoint: str | Path, to: str, out: str | Path, *, dtype: str = "f32",
                      force: bool = False, trust_unverified: bool = False) -> ExportResult:
    """Export the checkpoint folder ``checkpoint`` as format ``to`` ("hf" or "gguf") to ``out``."""
    if to not in FORMATS:
        raise ExportError(f"--to {to}: unknown format; choose one of {', '.join(FORMATS)}.")
    checkpoint, out = Path(checkpoint), Path(out)
    if to == "hf":
        from lunalm.export.hf import check_hf_request, export_hf

        check_hf_request(checkpoint, out, dtype=dtype, force=force)  # cheap checks before loading
        return export_hf(load_source(checkpoint, trust_unverified), out, dtype=dtype, force=force)
    _require_gguf()
    from lunalm.export.gguf import check_gguf_request, export_gguf

    check_gguf_request(checkpoint, out, dtype=dtype, force=force)
    return export_gguf(load_source(checkpoint, trust_unverified), out, dtype=dtype, force=force)


def _require_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError as error:
        raise ExportError("GGUF export needs the gguf package: pip install gguf "
                          "(or pip install \"lunalm[export]\").") from error
