"""Shared fixtures: small real Turkish texts written into temporary corpora."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs compared step by step (resume, determinism) keep their threads whatever else the machine runs; the guard
# itself is tested with a machine it is told about (tests/train/test_threads.py).
os.environ["LUNALM_THREAD_GUARD"] = "0"

# Real public code kept as scanner fixtures (tests/runs/scan_set/README.md): read by `luna scan`, never run.
collect_ignore_glob = ["runs/scan_set/*"]

TURKISH = [
    "Türkiye'nin başkenti Ankara'dır. Ankara'da her sabah güneş doğarken şehir yavaş yavaş uyanır.\n"
    "Çocuklar okula gider, öğretmenler derse hazırlanır; İstanbul'dan gelen tren ıslık çalar.\n",
    "Ağaçların gölgesinde oturan yaşlı adam, gençliğinde gördüğü savaşları anlatıyordu. "
    "Işıklar söndüğünde köydeki herkes onun sesini dinlemek için meydanda toplanırdı.\n",
    "Bilgisayar bilimi, algoritmaların ve veri yapılarının incelenmesidir. Öğrenciler ilk yıl "
    "programlamaya giriş dersini alır, ikinci yıl işletim sistemlerini öğrenirler.\n",
    "Karadeniz'in hırçın dalgaları kıyıya vururken balıkçılar ağlarını topluyordu. Hamsi mevsimi "
    "başlamıştı ve limandaki kahvehanede çay içen adamlar havadan sudan konuşuyordu.\n",
]


def run_luna(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (exit codes and messages as a user sees them)."""
    return subprocess.run([sys.executable, "-m", "lunalm", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


@pytest.fixture
def turkish_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for index, text in enumerate(TURKISH):
        (folder / f"doc{index}.txt").write_text(text * 3, encoding="utf-8")
    return folder
