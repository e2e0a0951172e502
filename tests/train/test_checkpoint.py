"""Tests for lunalm.train.checkpoint: atomic writes, manifest verification, fallback, pruning, RNG."""

import json
import random

import numpy as np
import pytest
import torch

from lunalm.model import LunaLM, ModelConfig, save_pretrained
from lunalm.tokenizer import train_char
from lunalm.train import checkpoint
from lunalm.train.checkpoint import (
    ASIDE_PREFIX,
    TEMP_PREFIX,
    CheckpointError,
    latest_good_checkpoint,
    load_checkpoint,
    load_train_state,
    prune_step_checkpoints,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    step_checkpoints,
    verify_checkpoint,
)

TEXT = "Ankara'da güneş doğarken şehir uyanır. İstanbul ıslık çalar."


@pytest.fixture
def tokenizer():
    return train_char([TEXT])


@pytest.fixture
def model(tokenizer):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tokenizer.vocab_size, context_length=16, n_layer=2, n_head=2, d_model=32)
    return LunaLM(cfg)


def save_step(directory, model, tokenizer, step, **extra):
    meta = {"step": step, "metrics": {"val_loss": 1.5}}
    return save_checkpoint(directory / f"step-{step:06d}", model, tokenizer, meta, {"step": step, **extra})


def test_round_trip_gives_identical_tensors_logits_and_meta(tmp_path, model, tokenizer):
    target = save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 7, "run": {"lr": 3e-4}})
    loaded, loaded_tokenizer, meta = load_checkpoint(target)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    ids = torch.tensor([tokenizer.encode("şehir uyanır")])
    assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert meta == {"step": 7, "run": {"lr": 3e-4}}
    assert loaded_tokenizer.content_hash == tokenizer.content_hash
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["format_version"] == checkpoint.FORMAT_VERSION
    assert {"config.json", "model.safetensors", "tokenizer.json", "lunalm.json"} <= set(manifest["files"])


def test_every_file_of_a_checkpoint_and_an_export_is_readable_as_the_umask_says(tmp_path, model, tokenizer):
    """safetensors writes its weights 0600: a checkpoint or an exported model shared on a lab machine or served
    by another user could not be loaded, while every other file was 0644."""
    import os

    from lunalm.export.common import write_directory

    old = os.umask(0o022)
    try:
        target = save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 7})
        write_directory(tmp_path / "hf", lambda folder: model.save_weights(folder, tokenizer))
    finally:
        os.umask(old)
    for folder in (target, tmp_path / "hf"):
        modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
        assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}, modes


def test_manifest_catches_truncated_weights(tmp_path, model, tokenizer):
    target = save_checkpoint(tmp_path / "best", model, tokenizer, {})
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="model.safetensors.*bytes"):
        verify_checkpoint(target)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(target)


def test_manifest_catches_a_flipped_byte(tmp_path, model, tokenizer):
    target = save_checkpoint(tmp_path / "best", model, tokenizer, {})
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors.*sha256"):
        verify_checkpoint(target)


def test_missing_file_and_missing_manifest_are_named(tmp_path, model, tokenizer):
    target = save_checkpoint(tmp_path / "best", model, tokenizer, {})
    (target / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json is missing"):
        verify_checkpoint(target)
    (target / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="no manifest.json"):
        verify_checkpoint(target)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def test_latest_good_checkpoint_falls_back_and_reports(tmp_path, model, tokenizer):
    for step in (100, 200, 300):
        save_step(tmp_path, model, tokenizer, step)
    (tmp_path / "step-000300" / "model.safetensors").write_bytes(b"garbage")
    skipped = []
    good = latest_good_checkpoint(tmp_path, on_skip=lambda path, reason: skipped.append((path, reason)))
    assert good == tmp_path / "step-000200"
    assert [path.name for path, _ in skipped] == ["step-000300"]
    assert "model.safetensors" in skipped[0][1]
    assert latest_good_checkpoint(tmp_path / "empty") is None


def test_crash_mid_write_leaves_no_target_and_old_best_intact(tmp_path, model, tokenizer, monkeypatch):
    best = save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 1})
    before = (best / "model.safetensors").read_bytes()

    def crash(directory):  # model.safetensors is already written when the tokenizer is saved
        raise RuntimeError("power cut")

    monkeypatch.setattr(tokenizer, "save", crash)
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    for name in ("best", "step-000500"):
        with pytest.raises(RuntimeError, match="power cut"):
            save_checkpoint(tmp_path / name, model, tokenizer, {"step": 2}, {"step": 2})
    assert not (tmp_path / "step-000500").exists()
    assert (best / "model.safetensors").read_bytes() == before
    verify_checkpoint(best)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]  # temp dirs removed


def test_disk_error_during_write_is_a_checkpoint_error(tmp_path, model, tokenizer, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(torch, "save", read_only)
    with pytest.raises(CheckpointError, match="Read-only.*writable"):
        save_step(tmp_path, model, tokenizer, 10)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_one_line_naming_the_folder(tmp_path, model, tokenizer, monkeypatch):
    """torch.save into a full disk: every write answers ENOSPC, as the OS does."""
    import errno
    import io
    import os

    from lunalm.errors import DiskFullError

    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, handle: real_save(obj, FullDisk()))
    with pytest.raises(DiskFullError, match=f"no space left on the disk holding {tmp_path} \\([0-9.,]+ MB free "
                                            "now\\) while writing checkpoint step-000010; free some space"):
        save_step(tmp_path, model, tokenizer, 10)
    assert list(tmp_path.iterdir()) == []


def test_crash_between_renames_restores_old_best(tmp_path, model, tokenizer):
    best = save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 1})
    # What a kill between "rename old aside" and "rename new in" leaves: the old one aside, a sealed temp.
    best.rename(tmp_path / f"{ASIDE_PREFIX}best-0123abcd")
    (tmp_path / f"{TEMP_PREFIX}best-89abcdef").mkdir()
    _, _, meta = load_checkpoint(best)
    assert meta == {"step": 1}
    prune_step_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_replacing_best_keeps_a_valid_checkpoint_under_the_name(tmp_path, model, tokenizer):
    save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 1})
    save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 2})
    assert load_checkpoint(tmp_path / "best")[2] == {"step": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_prune_keeps_newest_and_survives_a_failed_delete(tmp_path, model, tokenizer, monkeypatch):
    for step in (5, 10, 20, 40, 1000):
        save_step(tmp_path, model, tokenizer, step)
    (tmp_path / f"{TEMP_PREFIX}step-002000-deadbeef").mkdir()  # a crashed write
    (tmp_path / "best").mkdir()
    real_rename = checkpoint.os.rename

    def refuse_step_10(source, destination):
        if str(source).endswith("step-000010"):
            raise PermissionError(13, "Permission denied")
        return real_rename(source, destination)

    monkeypatch.setattr(checkpoint.os, "rename", refuse_step_10)
    prune_step_checkpoints(tmp_path, keep=2)
    assert [p.name for p in step_checkpoints(tmp_path)] == ["step-000010", "step-000040", "step-001000"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    monkeypatch.undo()
    prune_step_checkpoints(tmp_path, keep=2)
    assert [p.name for p in step_checkpoints(tmp_path)] == ["step-000040", "step-001000"]
    assert (tmp_path / "best").is_dir()


def test_prune_survives_a_failed_rmtree(tmp_path, model, tokenizer, monkeypatch):
    for step in (1, 2, 3):
        save_step(tmp_path, model, tokenizer, step)
    monkeypatch.setattr(checkpoint.shutil, "rmtree", lambda path: (_ for _ in ()).throw(OSError("busy")))
    prune_step_checkpoints(tmp_path, keep=1)  # logs, does not raise
    assert [p.name for p in step_checkpoints(tmp_path)] == ["step-000003"]
    monkeypatch.undo()
    prune_step_checkpoints(tmp_path, keep=1)  # the half-deleted leftovers are retried
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000003"]


def test_step_checkpoints_sort_by_step_number(tmp_path):
    for name in ("step-000900", "step-1000000", "step-000050", "best", f"{TEMP_PREFIX}step-5-00000000"):
        (tmp_path / name).mkdir()
    assert [p.name for p in step_checkpoints(tmp_path)] == ["step-000050", "step-000900", "step-1000000"]


def test_train_state_with_optimizer_loads_weights_only(tmp_path, model, tokenizer):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    ids = torch.tensor([tokenizer.encode(TEXT[:9])])
    model(ids[:, :-1], labels=ids[:, 1:]).loss.backward()
    optimizer.step()
    state = {"optimizer": optimizer.state_dict(), "sampler": {"position": 123},
             "rng": rng_state()}
    target = save_step(tmp_path, model, tokenizer, 1, **state)
    loaded = torch.load(target / "train_state.pt", weights_only=True)
    assert loaded["sampler"] == {"position": 123}
    restored = torch.optim.AdamW(model.parameters(), lr=1e-3)
    restored.load_state_dict(load_train_state(target)["optimizer"])
    for group in restored.state.values():
        assert set(group) == {"step", "exp_avg", "exp_avg_sq"}
    first = next(iter(optimizer.state.values()))["exp_avg"]
    assert torch.equal(first, next(iter(restored.state.values()))["exp_avg"])


def test_unsafe_train_state_is_refused_before_writing(tmp_path, model, tokenizer):
    with pytest.raises(TypeError, match=r"train_state\['sampler'\].*ndarray"):
        save_step(tmp_path, model, tokenizer, 1, sampler=np.arange(3))
    assert list(tmp_path.iterdir()) == []


def test_best_has_no_train_state(tmp_path, model, tokenizer):
    target = save_checkpoint(tmp_path / "best", model, tokenizer, {})
    with pytest.raises(CheckpointError, match="step-"):
        load_train_state(target)


def test_rng_round_trip_reproduces_draws(tmp_path):
    random.seed(1), torch.manual_seed(1), np.random.seed(1)
    random.random(), torch.rand(3), np.random.normal()  # normal() leaves a cached gaussian behind
    path = tmp_path / "rng.pt"
    torch.save(rng_state(), path)
    expected = (random.random(), torch.rand(5), np.random.normal(size=3))
    random.seed(99), torch.manual_seed(99), np.random.seed(99)
    restore_rng_state(torch.load(path, weights_only=True))
    assert random.random() == expected[0]
    assert torch.equal(torch.rand(5), expected[1])
    assert np.array_equal(np.random.normal(size=3), expected[2])


def test_pickle_only_directory_is_refused_without_unpickling(tmp_path):
    folder = tmp_path / "old-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")  # loading it would fail loudly
    with pytest.raises(CheckpointError, match="pickle.*never loads.*safetensors"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="pickle.*safetensors"):
        load_checkpoint(folder / "pytorch_model.bin")


def test_hf_llama_directory_without_manifest_loads_unverified(tmp_path, model, tokenizer, caplog):
    folder = tmp_path / "hf"
    save_pretrained(model, folder, eos_token_id=tokenizer.eot_id)
    tokenizer.save(folder)
    with pytest.raises(CheckpointError, match="Hugging Face Llama"):
        verify_checkpoint(folder)
    loaded, _, meta = load_checkpoint(folder)
    assert meta == {} and "unverified" in caplog.text
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)


def test_run_directory_gets_a_pointer_to_its_checkpoints(tmp_path, model, tokenizer):
    run = tmp_path / "runs" / "demo"
    save_checkpoint(run / "checkpoints" / "best", model, tokenizer, {})
    with pytest.raises(CheckpointError, match="run directory.*checkpoints/best.*luna resume"):
        load_checkpoint(run)
    with pytest.raises(CheckpointError, match="checkpoints folder"):
        load_checkpoint(run / "checkpoints")


def test_lunalm_checkpoint_without_manifest_is_refused_unless_trusted(tmp_path, model, tokenizer, caplog):
    target = save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 3})
    (target / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="lunalm checkpoint .lunalm.json. with no manifest.json.*"
                                              "--trust-unverified"):
        load_checkpoint(target)
    loaded, _, meta = load_checkpoint(target, trust_unverified=True)
    assert meta == {"step": 3} and "unverified" in caplog.text
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)


@pytest.mark.parametrize("meta_text", ["{not json", "[1, 2]", '{"model": "hf"}'])
def test_tampered_lunalm_json_is_a_checkpoint_error(tmp_path, model, tokenizer, meta_text):
    target = save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 3})
    (target / "manifest.json").unlink()
    (target / "lunalm.json").write_text(meta_text, encoding="utf-8")
    with pytest.raises(CheckpointError, match="lunalm.json .*damaged"):
        load_checkpoint(target, trust_unverified=True)


def test_a_model_safetensors_that_is_not_safetensors_is_a_checkpoint_error(tmp_path, model, tokenizer):
    folder = tmp_path / "hf"
    save_pretrained(model, folder, eos_token_id=tokenizer.eot_id)
    tokenizer.save(folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64 + b"not safetensors at all")
    with pytest.raises(CheckpointError, match="cannot be loaded as a model"):
        load_checkpoint(folder)


def test_finetune_base_refuses_an_unsealed_lunalm_checkpoint(tmp_path, model, tokenizer):
    from lunalm.finetune.base import FinetuneError, inspect_base

    target = save_checkpoint(tmp_path / "best", model, tokenizer, {"step": 3})
    assert inspect_base(str(target)).kind == "lunalm"
    (target / "manifest.json").unlink()
    with pytest.raises(FinetuneError, match="lunalm checkpoint without its manifest.json"):
        inspect_base(str(target))
