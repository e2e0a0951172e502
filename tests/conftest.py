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


def run_luna(*args: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None,
             input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a process of its own (exit codes and messages as a user sees them).

    The process is forked from a server that has imported torch and lunalm once (``multiprocessing``'s
    forkserver; the server itself never runs anything), so each call skips the ~3 s of imports that
    ``python -m lunalm`` pays: ~170 calls in the suite. It gets ``env`` (else this process's environment),
    the given folder and ``input`` on its stdin; its stdout and stderr are files read back as
    ``subprocess.run(text=True)`` reads them, and its exit code is what ``python -m lunalm`` would return.
    LUNALM_TEST_SUBPROCESS=1 runs ``python -m lunalm`` instead."""
    if os.environ.get("LUNALM_TEST_SUBPROCESS") == "1":
        return subprocess.run([sys.executable, "-m", "lunalm", *args], capture_output=True, text=True,
                              cwd=cwd, timeout=timeout, env=env, input=input)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="luna-cli-") as folder:
        out, err, given = (os.path.join(folder, name) for name in ("stdout", "stderr", "stdin"))
        with open(given, "w", encoding="utf-8") as handle:
            handle.write(input or "")
        process = _cli_server().Process(target=_cli_child, args=(list(args), str(cwd) if cwd else None,
                                                                 dict(os.environ if env is None else env), given,
                                                                 out, err))
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired([sys.executable, "-m", "lunalm", *args], timeout)
        stdout, stderr = (_text(path) for path in (out, err))
    return subprocess.CompletedProcess([sys.executable, "-m", "lunalm", *args], process.exitcode, stdout, stderr)


_SERVER = None


def _cli_server():
    global _SERVER
    if _SERVER is None:
        import multiprocessing

        _SERVER = multiprocessing.get_context("forkserver")
        _SERVER.set_forkserver_preload(["torch", "lunalm.cli", "lunalm.train.session", "tests.conftest"])
    return _SERVER


def _text(path: str) -> str:
    """What ``subprocess.run(text=True)`` makes of the bytes: the locale's encoding, universal newlines."""
    import io
    import locale

    with open(path, "rb") as handle:
        data = handle.read()
    return io.TextIOWrapper(io.BytesIO(data), encoding=locale.getpreferredencoding(False), newline=None).read()


def _cli_child(args: list[str], cwd: str | None, env: dict, given: str, out: str, err: str) -> None:
    """``python -m lunalm ARGS`` in a forked process: its environment, folder, standard streams and exit."""
    import atexit
    import io
    import traceback

    os.environ.clear()
    os.environ.update(env)
    threads = env.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:  # torch read it when the server imported it; a new process would
        import torch  # noqa: PLC0415

        torch.set_num_threads(int(threads))
    if cwd:
        os.chdir(cwd)
    for fd, path in ((0, given), (1, out), (2, err)):
        handle = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, fd)
        os.close(handle)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=False)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, errors="backslashreplace")
    sys.argv = [os.path.join(os.path.dirname(__import__("lunalm").__file__), "__main__.py"), *args]
    code = 1
    try:
        from lunalm.cli import main

        code = main()
        code = 0 if code is None else code
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
    except BaseException:  # what the interpreter prints for an uncaught exception
        traceback.print_exc()
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code if isinstance(code, int) else 1)


@pytest.fixture
def turkish_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for index, text in enumerate(TURKISH):
        (folder / f"doc{index}.txt").write_text(text * 3, encoding="utf-8")
    return folder
