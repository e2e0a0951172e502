"""``luna export`` of ``luna finetune`` results (tiny random GPT-2 / Llama / Phi bases saved locally).

Each export is read back by an independent loader (transformers, also for GGUF files) and must give the
fine-tuned checkpoint's logits; an architecture GGUF export cannot write is refused in one sentence.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from tests.conftest import run_luna
from tests.finetune.fthelp import CHAT, tiny_base, write_jsonl
from tests.train.runhelp import write_corpus

from lunalm.export import ExportError, export_checkpoint, load_source

QUICK = ["--context", "32", "--batch-size", "4", "--device", "cpu", "--sample-every", "0", "--quiet",
         "--max-steps", "2", "--lr", "1e-2"]
TEXT = "Türkiye'nin başkenti Ankara'dır. Çocuklar okula gider."


def _finetune(root: Path, name: str, *argv: str) -> Path:
    """Run ``luna finetune ARGV`` in this process (cwd ``root``); returns its final checkpoint."""
    from lunalm.cli import build_parser
    from lunalm.cli.finetune import build_finetune_config
    from lunalm.train.loop import SilentUI
    from lunalm.train.session import start

    args = build_parser().parse_args(["finetune", *QUICK, "--runs-dir", str(root / "runs"), "--name", name, *argv])
    run, status = start(build_finetune_config(args), SilentUI(), progress=False)
    assert status == "completed"
    return run.run_dir / "checkpoints" / "final"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> dict[str, Path]:
    """{"gpt2-lora-chat", "llama", "phi"} -> the final checkpoint of a 2-step fine-tune."""
    root = tmp_path_factory.mktemp("tuned")
    corpus = write_corpus(root / "corpus")
    chat = write_jsonl(root / "chat.jsonl", CHAT)
    bases = {arch: tiny_base(root / arch, arch) for arch in ("gpt2", "llama", "phi")}
    return {"gpt2-lora-chat": _finetune(root, "g", "--base", str(bases["gpt2"]), str(chat), "--lora",
                                        "--context", "96"),
            "llama": _finetune(root, "l", "--base", str(bases["llama"]), str(corpus)),
            "phi": _finetune(root, "p", "--base", str(bases["phi"]), str(corpus))}


def _ids(checkpoint: Path) -> torch.Tensor:
    return torch.tensor([load_source(checkpoint).tokenizer.encode(TEXT)])


def _checkpoint_logits(checkpoint: Path, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return load_source(checkpoint).model(ids).logits


def _transformers_logits(folder: Path, ids: torch.Tensor, **options) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), **options).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("kind", ["gpt2-lora-chat", "phi"])
def test_hf_export_of_a_finetune_keeps_its_architecture_and_logits(tuned, tmp_path, kind):
    from transformers import AutoTokenizer

    out = export_checkpoint(tuned[kind], "hf", tmp_path / "hf").path
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == kind.split("-")[0]
    ids = _ids(tuned[kind])
    torch.testing.assert_close(_transformers_logits(out, ids), _checkpoint_logits(tuned[kind], ids),
                               rtol=0, atol=1e-5)
    assert AutoTokenizer.from_pretrained(str(out))(TEXT).input_ids == ids[0].tolist()
    assert not {"lunalm.json", "manifest.json", "adapter"} & {p.name for p in out.iterdir()}


def test_hf_export_of_a_chat_finetune_keeps_its_template(tuned, tmp_path):
    from transformers import AutoTokenizer

    out = export_checkpoint(tuned["gpt2-lora-chat"], "hf", tmp_path / "hf").path
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ours = load_source(tuned["gpt2-lora-chat"]).tokenizer
    assert tokenizer.chat_template == ours.chat_template is not None
    assert "apply_chat_template" in (out / "README.md").read_text(encoding="utf-8")


def test_exported_generation_config_has_no_max_length_and_generate_does_not_warn(tuned, tmp_path):
    from transformers import AutoModelForCausalLM

    out = export_checkpoint(tuned["llama"], "hf", tmp_path / "hf").path
    config = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    assert "max_length" not in config and config["do_sample"] is True
    model = AutoModelForCausalLM.from_pretrained(str(out))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.generate(_ids(tuned["llama"]), max_new_tokens=3, do_sample=False)
    assert not [w for w in caught if "max_length" in str(w.message)]


@pytest.mark.parametrize("kind", ["gpt2-lora-chat", "llama"])
def test_gguf_export_of_a_finetune_gives_its_logits(tuned, tmp_path, kind):
    """transformers reads GGUF itself (undoing llama.cpp's GPT-2 transposes and Llama RoPE row order)."""
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate", reason="transformers needs accelerate to load GGUF files")
    result = export_checkpoint(tuned[kind], "gguf", tmp_path / "model.gguf")
    ids = _ids(tuned[kind])
    # transformers' GGUF reader maps gpt2.context_length to n_ctx, which GPT2Config no longer reads: give
    # the position count ourselves (the file has it right: llama.cpp reads gpt2.context_length)
    positions = {"n_positions": 128} if kind.startswith("gpt2") else {}
    theirs = _transformers_logits(tmp_path, ids, gguf_file=result.path.name, **positions)
    torch.testing.assert_close(theirs, _checkpoint_logits(tuned[kind], ids), rtol=0, atol=1e-4)


def test_gguf_of_a_chat_finetune_carries_its_template(tuned, tmp_path):
    gguf = pytest.importorskip("gguf")
    result = export_checkpoint(tuned["gpt2-lora-chat"], "gguf", tmp_path / "chat.gguf")
    reader = gguf.GGUFReader(str(result.path))
    field = reader.fields["tokenizer.chat_template"]
    assert field.contents() == load_source(tuned["gpt2-lora-chat"]).tokenizer.chat_template
    assert field.contents() is not None and reader.fields["general.architecture"].contents() == "gpt2"


def test_gguf_of_an_unsupported_architecture_is_one_sentence_and_writes_nothing(tuned, tmp_path):
    pytest.importorskip("gguf")
    with pytest.raises(ExportError, match=r"supports lunalm models and fine-tunes of Llama and GPT-2 bases, "
                                          r"not phi; export with --to hf"):
        export_checkpoint(tuned["phi"], "gguf", tmp_path / "phi.gguf")
    assert list(tmp_path.iterdir()) == []
    proc = run_luna("export", str(tuned["phi"]), "--to", "gguf", str(tmp_path / "phi.gguf"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")][0].endswith(
        "convert that folder with llama.cpp's convert_hf_to_gguf.py.")


def test_two_gguf_exports_in_one_folder_keep_their_own_modelfiles(tuned, tmp_path):
    pytest.importorskip("gguf")
    for name, kind in (("first", "llama"), ("second", "gpt2-lora-chat")):
        proc = run_luna("export", str(tuned[kind]), "--to", "gguf", str(tmp_path / f"{name}.gguf"))
        assert proc.returncode == 0, proc.stderr
        assert f"ollama create {name} -f {tmp_path / f'{name}.Modelfile'}" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.Modelfile", "first.gguf",
                                                          "second.Modelfile", "second.gguf"]
    for name in ("first", "second"):
        assert (tmp_path / f"{name}.Modelfile").read_text(encoding="utf-8").startswith(f"FROM ./{name}.gguf\n")
