"""A full disk during training: one line that names the disk, status ``disk-full``, and resume still works."""

import errno
import json
import os
import sqlite3
import subprocess
import sys

from runhelp import luna_env, run_luna, write_corpus, write_yaml

from lunalm.errors import is_disk_full

# Runs the real CLI with torch.save writing, from the 2nd checkpoint on, into a file whose every write fails
# the way a write to a full disk does (OSError ENOSPC).
FULL_AFTER_ONE_CHECKPOINT = """
import errno, io, os, sys, torch
class FullDisk(io.RawIOBase):
    def writable(self):
        return True
    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
real_save, calls = torch.save, []
def save(obj, handle, *args, **kwargs):
    calls.append(1)
    return real_save(obj, FullDisk() if len(calls) > 1 else handle, *args, **kwargs)
torch.save = save
from lunalm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_disk_full_messages_of_torch_safetensors_sqlite_and_os_are_recognised():
    from safetensors import SafetensorError

    os_error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "runs/x/metrics.jsonl")
    assert is_disk_full(os_error) and is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    safetensors = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                                  'message: "No space left on device" })')
    assert is_disk_full(safetensors)
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    try:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from os_error
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert not is_disk_full(OSError(13, "Permission denied")) and not is_disk_full(RuntimeError("shape"))


def test_full_disk_mid_training_is_one_line_status_disk_full_and_resumes(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    config = write_yaml(tmp_path / "tiny.yaml", tmp_path / "cache", checkpoint_every=2, max_steps=6)
    runs = tmp_path / "runs"
    args = ["train", str(corpus), "--config", str(config), "--name", "full", "--runs-dir", str(runs), "--quiet"]
    result = subprocess.run([sys.executable, "-c", FULL_AFTER_ONE_CHECKPOINT, *args], capture_output=True,
                            text=True, env=luna_env(), timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: no space left on the disk holding {runs / 'full'} (")
    assert "while writing checkpoint step-00000004" in line and f"`luna resume {runs / 'full'}`" in line
    with sqlite3.connect(runs / "registry.sqlite") as db:
        status, kind = db.execute("SELECT status, error_kind FROM runs").fetchone()
    assert (status, kind) == ("disk-full", "disk-full")
    steps = sorted(p.name for p in (runs / "full" / "checkpoints").iterdir())
    assert steps == ["step-00000002"]  # the failed write left nothing behind
    resumed = run_luna("resume", str(runs / "full"), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((runs / "full" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["status"], summary["steps"]) == ("completed", 6)
