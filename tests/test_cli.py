"""The `luna` command as a user runs it: help, exit codes, messages, files written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TURKISH, run_luna


def test_help_is_fast_and_teaches():
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", "from lunalm.cli import main; main(['--help'])"],
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0 and "examples:" in result.stdout and "analyze" in result.stdout
    assert elapsed < 2.0  # the 0.5 s goal is for the command itself; interpreter start-up is extra here
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys; from lunalm.cli import build_parser; build_parser(); "
         "print(sorted(m for m in ('torch', 'tokenizers', 'numpy') if m in sys.modules))"],
        capture_output=True, text=True)
    assert heavy.stdout.strip() == "[]"


def test_every_subcommand_help_has_an_example():
    from lunalm.cli import build_parser

    (commands,) = [action for action in build_parser()._actions if action.choices and action.dest != "help"]
    assert set(commands.choices) >= {"plan", "train", "resume", "generate", "eval", "analyze", "runs", "scan",
                                     "report", "finetune", "chat", "export"}
    for name, parser in commands.choices.items():
        help_text = parser.format_help()
        assert "examples:" in help_text, name
        examples = help_text.split("examples:", 1)[1]
        assert f"luna {name}" in examples, name
    result = run_luna("export", "--help")  # and as a user sees it
    assert result.returncode == 0 and "examples:" in result.stdout and "luna export" in result.stdout


def _options(parser, path=("luna",)):
    """(command path, action) for every option of every (sub)command."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield " ".join(path), action


def test_every_flag_has_help_and_a_value_flag_shows_its_default():
    from lunalm.cli import build_parser, help_with_default

    options = list(_options(build_parser()))
    assert len(options) > 150  # every command's flags, runs' actions included
    silent = [(path, a.option_strings[0]) for path, a in options if not a.help]
    assert silent == []
    undefaulted = [(path, a.option_strings[0]) for path, a in options
                   if a.nargs != 0 and not a.required and "default" not in help_with_default(a)]
    assert undefaulted == []
    shown = run_luna("train", "--help").stdout
    assert "--dropout P                   residual dropout probability (default 0.0)" in shown
    shown = " ".join(run_luna("generate", "--help").stdout.split())
    assert "--temperature TEMPERATURE 0 = greedy (default 0.8)" in shown and "1.0 = off (ignored when --temperature " \
        "is 0) (default 1.1)" in shown


def test_runs_actions_are_subcommands_with_their_own_help():
    compare = run_luna("runs", "compare", "--help")
    assert compare.returncode == 0 and compare.stdout.startswith("usage: luna runs compare")
    assert "Compare runs" in compare.stdout and "--plot PNG" in compare.stdout and "--status" not in compare.stdout
    listing = run_luna("runs", "list", "--help").stdout
    assert "List recorded runs" in listing and "--status" in listing and "--plot" not in listing
    assert "the following arguments are required: RUN" in run_luna("runs", "compare").stderr


def test_analyze_json_numbers(turkish_dir: Path):
    result = run_luna("analyze", str(turkish_dir), "--json", "--files")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    corpus = report["corpus"]
    expected_chars = sum(len(text * 3) for text in TURKISH)
    assert corpus["documents"] == 4 and corpus["characters"] == expected_chars
    assert corpus["bytes"] == sum(len((text * 3).encode()) for text in TURKISH)
    assert corpus["lines"] == sum((text * 3).count("\n") for text in TURKISH)
    assert corpus["tokens"] > 0 and corpus["chars_per_token"] > 1
    assert corpus["duplicate_lines"] > 0  # each text is repeated three times
    assert 0.05 < corpus["turkish_letter_share"] < 0.2
    assert len(report["files"]) == 4


def test_analyze_fix_writes_repaired_corpus(tmp_path: Path):
    source = tmp_path / "in"
    source.mkdir()
    (source / "moji.txt").write_text(TURKISH[0].encode().decode("cp1254"), encoding="utf-8")
    (source / "fine.txt").write_text(TURKISH[1], encoding="utf-8")
    result = run_luna("analyze", str(source), "--fix", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["text"] for line in lines) == sorted(TURKISH[:2])
    again = run_luna("analyze", str(source), "--fix", str(tmp_path / "out"))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_analyze_reports_lost_byte_repairs_per_file(tmp_path: Path):
    source = tmp_path / "in"
    source.mkdir()
    text = "Türkçe ve doğru.\nBAŞARISIZ oldu, Şimdi 🎯.\nÇok güzel 乍.\n"  # 乍 = E4 B9 8D: not rebuildable
    lost = bytes(b for b in text.encode() if b not in (0x81, 0x8D, 0x8E, 0x8F, 0x90, 0x9D, 0x9E))
    (source / "notes.txt").write_text(lost.decode("cp1254"), encoding="utf-8")
    result = run_luna("analyze", str(source), "--json", "--files")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    file = report["files"][str(source / "notes.txt")]
    assert (file["recovered_bytes"], file["unrecoverable_lines"]) == (3, [3])  # Ş Ş 🎯 rebuilt
    assert file["repaired_sequences"] == 8  # ü ç ğ Ş Ş 🎯 Ç ü
    assert report["corpus"]["unrecoverable_sites"] == 1
    table = run_luna("analyze", str(source))
    assert "3 lost bytes rebuilt, 1 sites unrecoverable" in table.stdout
    assert "1 lost-byte sites left as they were, lines 3" in table.stdout


def test_analyze_names_language_and_counts_english_words_with_english_casing(tmp_path: Path):
    english = tmp_path / "en.txt"
    english.write_text("It was in Istanbul that it rained. Istanbul is where it is. The city and the sea.\n"
                       * 3, encoding="utf-8")
    result = run_luna("analyze", str(english), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["corpus"]["language"] == "en"
    # it was in istanbul that rained is where the city and sea; Turkish rules would count 13 ("ıt" beside "it")
    assert report["corpus"]["unique_words"] == 12
    assert "BPE vocab 512, the size `luna train` builds" in report["tokenizer"]  # the smallest: 249 characters
    table = run_luna("analyze", str(english)).stdout
    assert "language" in table and "en (English)" in table


def test_bad_input_is_one_clear_line(tmp_path: Path):
    result = run_luna("analyze", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr
    png = tmp_path / "photo.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    result = run_luna("analyze", str(png), "--fix", str(tmp_path / "out"))
    assert result.returncode == 2 and "PNG image" in result.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".luna-fix-*"))


def test_bad_model_shape_fails_before_any_data_work(turkish_dir: Path, tmp_path: Path):
    """An unknown preset or an impossible override is reported before the tokenizer and shards are built."""
    for flags, expected in ((["--preset", "huge"], "known presets: pico, nano, tiny"),
                            (["--preset", "nano", "--context", "64", "--config", str(_yaml(tmp_path))],
                             "d_model: must be a multiple of n_head=5")):
        result = run_luna("train", str(turkish_dir), "--runs-dir", str(tmp_path / "runs"), *flags, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert "tokenizer" not in result.stdout + result.stderr.replace("error:", "")
        assert not (tmp_path / "runs").exists() and not (tmp_path / ".cache").exists()


def _yaml(tmp_path: Path) -> Path:
    path = tmp_path / "shape.yaml"
    path.write_text("model:\n  n_head: 5\n", encoding="utf-8")
    return path


def test_console_sample_is_one_line_and_keeps_the_space_after_the_prompt(capsys):
    from lunalm.cli.train import ConsoleUI

    ConsoleUI().sample(5, "Yapay zekâ", " ve\n\nbilim  yapar. ")
    ConsoleUI().sample(6, "Tarih boyunca", "ki olaylar")  # a continuation inside the word stays joined
    assert capsys.readouterr().err == "  [step 5] Yapay zekâ ve bilim yapar.\n  [step 6] Tarih boyuncaki olaylar\n"
    ConsoleUI(quiet=True).sample(7, "x", "y")
    assert capsys.readouterr().err == ""


def test_run_summary_reports_the_best_checkpoints_bits_per_byte(tmp_path: Path, capsys):
    from types import SimpleNamespace

    from lunalm.cli.train import print_summary
    from lunalm.config import RunConfig

    run_dir = tmp_path / "runs" / "r"
    (run_dir / "checkpoints" / "best").mkdir(parents=True)
    (run_dir / "checkpoints" / "best" / "lunalm.json").write_text(
        json.dumps({"metrics": {"bits_per_byte": 1.8765}}), encoding="utf-8")
    summary = {"status": "completed", "run_dir": str(run_dir), "steps": 300, "total_steps": 300,
               "tokens_seen": 1_228_800, "n_params": 1_451_136, "device": "CPU (2 threads)", "precision": "fp32",
               "wall_time_s": 7200.0, "tokens_per_s": 170, "best_val_loss": 2.0, "best_step": 200,
               "last_eval": {"loss": 2.1, "bits_per_byte": 1.99}}
    run = SimpleNamespace(config=RunConfig(), eval_batches=[object()], sample_prompts=("It was the", "x"))
    summary["heldout"] = {"bits_per_byte": 1.6, "documents": 41, "bytes": 298_066, "ppmd_bits_per_byte": 1.5,
                          "ppmd_order": 8}
    print_summary(summary, run)
    out = capsys.readouterr().out
    lines = {line.split("  ")[1].strip(): line.split("  ", 2)[2].strip() for line in
             out.splitlines() if line.startswith("  ") and len(line.split("  ")) > 2}
    assert lines["best val loss"] == "2.0000 at step 200  (perplexity 7.39, 1.877 bits/byte)"
    assert lines["time"] == "2.0 h on CPU (2 threads), fp32, 170 tokens/s"
    assert lines["held-out"] == "1.600 bits/byte on 41 validation document(s) never trained on (298,066 bytes)"
    assert lines["vs PPMd"] == ("1.500 bits/byte (order 8, conditioned on the training text): PPMd still predicts "
                                "this text better (1.07x its bits): train longer (--minutes), or add text")
    summary["passes"] = 2.5  # a few passes: more time may still help
    print_summary(summary, run)
    assert ("better (1.07x its bits) (the model saw its text ~2.5 times): train longer (--minutes), or add text"
            in capsys.readouterr().out)
    summary["passes"] = 12.7  # OffensEval's 2.5-minute plan: 16/12.7 more passes is all more time could add
    print_summary(summary, run)
    assert ("better (1.07x its bits) (the model saw its text ~12.7 times, of the ~16 that still teach anything): "
            "more text would help most, more time little" in capsys.readouterr().out)
    summary["passes"], summary["status"] = 16.0, "completed"  # the text seen 16 times: only more text helps
    print_summary(summary, run)
    assert ("better (1.07x its bits): the model saw its text ~16 times, so more text would help, more time "
            "would not" in capsys.readouterr().out)
    summary["passes"], summary["status"] = 3.0, "stopped-early"
    print_summary(summary, run)
    assert ("the model saw its text ~3 times, until validation stopped improving, so more text would help"
            in capsys.readouterr().out)
    summary["status"] = "completed"
    assert "samples" not in lines  # samples.md was not written
    assert lines["curves"] == f"(tensorboard --logdir {run_dir}/tb)"  # no loss.png drawn
    assert "--prompt 'It was the'" in out  # the hint uses the corpus's own first prompt
    summary["heldout"]["bits_per_byte"] = 1.2
    (run_dir / "samples.md").write_text("## step 1\n", encoding="utf-8")
    print_summary(summary, run)
    out = capsys.readouterr().out
    assert "1.500 bits/byte (order 8, conditioned on the training text): 20 % fewer bits than PPMd" in out
    assert re.search(rf"^  samples +{re.escape(str(run_dir))}/samples.md$", out, re.M)
    (run_dir / "checkpoints" / "best" / "lunalm.json").unlink()  # no best checkpoint: the last evaluation's
    print_summary(summary, run)
    assert "(perplexity 7.39, 1.990 bits/byte at the last evaluation)" in capsys.readouterr().out


def test_nproc_must_be_a_positive_process_count(tmp_path: Path):
    for command in (["train", "--nproc", "0"], ["resume", str(tmp_path), "--nproc", "-2"], ["plan", "--nproc", "x"]):
        result = run_luna(*command, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "expected a whole number of processes >= 1" in result.stderr.splitlines()[-1]
    assert not (tmp_path / "runs").exists()


def test_luna_eval_scores_whole_documents_with_sliding_windows_exactly(tmp_path: Path):
    """`luna eval CKPT PATH --json --stride S` equals cross-entropy computed here: the document after an
    end-of-text token, windows of the context every S tokens, each target scored once with the most
    context its window gives; a sentence shorter than the context is one shorter window."""
    import math

    import torch
    import torch.nn.functional as F

    from lunalm.evaluate import token_byte_lengths
    from lunalm.train import checkpoint as ckpt
    from lunalm.train.loop import SilentUI
    from lunalm.train.session import start
    from tests.train.runhelp import CONTEXT, tiny_config, write_corpus

    run, status = start(tiny_config(tmp_path, write_corpus(tmp_path / "corpus"), max_steps=3), SilentUI(),
                        progress=False)
    checkpoint = run.run_dir / "checkpoints" / "final"
    model, tokenizer, _ = ckpt.load_checkpoint(checkpoint)
    byte_lengths = token_byte_lengths(tokenizer)
    stride = CONTEXT // 4
    long_text = ("Ankara'da güzel bir gün. " * 8)[:3 * CONTEXT + 5]
    windows_used = {}
    for name, text in (("long.txt", long_text), ("short.txt", "Çok güzel.")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        ids = [tokenizer.eot_id] + tokenizer.encode(text)
        assert len(ids) == len(text) + 1  # char tokens
        nats, correct, n_bytes, scored_until = 0.0, 0, 0, 0  # scored_until: targets ids[1..k] done
        n_targets = len(ids) - 1
        starts = list(range(0, max(1, n_targets - CONTEXT + stride), stride))
        for windows_used[name], begin in enumerate(starts, 1):
            begin = min(begin, max(0, n_targets - CONTEXT))
            window = torch.tensor(ids[begin:begin + CONTEXT + 1])[None]  # (1, T + 1)
            with torch.no_grad():
                logits = model(window[:, :-1]).logits.float()[0]  # (T, V)
            targets = window[0, 1:]
            new = slice(scored_until - begin, None)  # only targets no earlier window scored
            nats += F.cross_entropy(logits[new], targets[new], reduction="sum").item()
            correct += (logits[new].argmax(-1) == targets[new]).sum().item()
            n_bytes += byte_lengths[targets[new]].sum().item()
            scored_until = begin + window.shape[1] - 1
            if scored_until >= n_targets:
                break
        assert scored_until == n_targets
        result = run_luna("eval", str(checkpoint), str(tmp_path / name), "--json", "--device", "cpu",
                          "--stride", str(stride))
        assert result.returncode == 0, result.stderr
        got = json.loads(result.stdout)
        assert got["tokens"] == n_targets and got["source"] == str(tmp_path / name) and got["documents"] == 1
        assert got["loss"] == pytest.approx(nats / n_targets, rel=1e-5)
        assert got["perplexity"] == pytest.approx(math.exp(nats / n_targets), rel=1e-5)
        assert got["accuracy"] == pytest.approx(correct / n_targets)
        assert got["bytes"] == n_bytes == len(text.encode("utf-8"))
        assert got["bits_per_byte"] == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-5)
        assert f"stride {stride}" in got["method"] and got["stride"] == stride and got["context"] == CONTEXT
    assert windows_used == {"long.txt": 10, "short.txt": 1}  # overlapping windows; one short window
    bad = run_luna("eval", str(checkpoint), str(tmp_path / "short.txt"), "--stride", str(CONTEXT + 1))
    assert bad.returncode == 2 and f"--stride {CONTEXT + 1}: expected" in bad.stderr.splitlines()[-1]


def test_eval_reads_text_as_the_run_did_and_the_generate_hint_survives_a_prompt_starting_with_a_dash(tmp_path: Path):
    import dataclasses
    import shlex

    from lunalm.cli import build_parser
    from lunalm.cli.train import _prompt_argument
    from lunalm.train.loop import SilentUI
    from lunalm.train.session import start
    from tests.train.runhelp import tiny_config, write_corpus

    config = tiny_config(tmp_path, write_corpus(tmp_path / "corpus"), max_steps=2)
    config = dataclasses.replace(config, corpus=dataclasses.replace(config.corpus, filter_non_prose=True))
    run, _ = start(config, SilentUI(), progress=False)
    checkpoint = str(run.run_dir / "checkpoints" / "final")
    page = tmp_path / "page.txt"
    page.write_text("Ankara'da güzel bir gün başladı ve herkes işine gitti.\n| a | b | c | d |\n| 1 | 2 | 3 | 4 |\n",
                    encoding="utf-8")
    scored = {}
    for flags in ((), ("--no-filter",)):
        done = run_luna("eval", checkpoint, str(page), "--json", "--device", "cpu", *flags)
        assert done.returncode == 0 and "training corpus" not in done.stderr, done.stderr
        scored[flags] = json.loads(done.stdout)
    trained_file = sorted((tmp_path / "corpus").iterdir())[0]
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "kopya.txt").write_bytes(trained_file.read_bytes())  # a copy under another name
    for target in (tmp_path / "corpus", tmp_path / "copy"):
        done = run_luna("eval", checkpoint, str(target), "--device", "cpu")
        assert done.returncode == 0 and "in this run's training corpus" in done.stderr, done.stderr
        count = len(list(target.iterdir()))
        assert f"{count} of the {count} file(s) to evaluate" in done.stderr and "flatters" in done.stderr
    assert scored[()]["source"].endswith("its non-prose removed as in training (--no-filter keeps it)")
    assert scored[()]["bytes"] == len("Ankara'da güzel bir gün başladı ve herkes işine gitti.\n".encode())
    assert scored[("--no-filter",)]["bytes"] > scored[()]["bytes"]  # the table's rows are scored too
    for prompt in ("---", "-x y", "Ankara'da", ""):  # the summary's hint, run through a shell and argparse
        argv = ["generate", checkpoint, *shlex.split(_prompt_argument(prompt))]
        assert build_parser().parse_args(argv).prompt == [prompt]


def test_document_windows_score_every_target_once_with_the_most_context():
    from lunalm.heldout import document_windows

    for n_ids in (1, 2, 9, 10, 11, 17, 40):
        for context, stride in ((8, 8), (8, 4), (8, 3), (8, 1)):
            ids = list(range(n_ids))
            seen = []
            for window, first in document_windows(ids, context, stride):
                start = ids.index(window[0])
                assert len(window) <= context + 1 and window == ids[start:start + len(window)]
                seen += window[1:][first:]
                if first:  # a later window: each newly scored target has >= context - stride tokens before it
                    assert first >= context - stride
            assert seen == ids[1:]  # every target once, in order


def test_a_run_that_cannot_fit_in_memory_is_refused_before_allocating(turkish_dir: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    result = run_luna("train", str(turkish_dir), "--tokenizer", "char", "--batch-size", "1000000", "--runs-dir",
                      str(runs), "--name", "huge", "--quiet", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: model nano (") and "with micro_batch_size 1000000" in line
    assert "needs about" in line and "GB free" in line and "`luna plan` finds settings that fit" in line
    assert not (runs / "huge").exists()


def test_first_documents_keeps_whole_documents_and_reads_an_iterator_no_further():
    from lunalm.heldout import first_documents, split_documents

    documents = iter(split_documents([5, 6, 7, 0, 8, 9, 0, 1, 2, 3, 4], boundary=0))  # eot = 0
    assert first_documents(documents, max_tokens=4) == [[0, 5, 6, 7], [0, 8, 9]]  # 3 + 2 targets >= 4
    assert next(documents) == [0, 1, 2, 3, 4]  # the rest is still there to be counted


def test_ppmd_codes_the_heldout_text_after_the_training_text_in_one_pass():
    """One pass per order gives C(train + held-out) - C(train) but for the few bytes ending C(train)'s stream."""
    import pyppmd

    from lunalm.corpus import builtin
    from lunalm.heldout import PPMD_MEMORY, ppmd_bits_per_byte

    texts = [text for _, text in builtin.iter_speeches()][:40]
    train, heldout = "\n\n".join(texts[:-4]).encode(), "\n\n".join(texts[-4:]).encode()
    bits, order = ppmd_bits_per_byte(train, heldout, orders=(4, 8))
    compress = lambda data: len(pyppmd.compress(data, max_order=order, mem_size=PPMD_MEMORY, variant="I"))
    twice = compress(train + heldout) - compress(train)
    assert 0 <= bits * len(heldout) / 8 - twice <= 16
    assert order == 8 and 1.0 < bits < 3.0


def test_another_tools_resume_flag_points_to_luna_resume(capsys):
    """`luna train --resume DIR` (HF Trainer's and litgpt's habit) says how lunalm continues a run instead of
    argparse's bare 'unrecognized arguments'; a file named like a flag after `--` is still a path."""
    from lunalm.cli import main

    for argv in (["train", "--resume", "runs/x"], ["train", "data/", "--resume_from_checkpoint=runs/x/ckpt"],
                 ["finetune", "--base", "gpt2", "d.txt", "--resume"]):
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: luna {argv[0]} has no --resume") and "`luna resume RUN_DIR`" in error
    from lunalm.cli import _foreign_flag

    assert _foreign_flag(["train", "--", "--resume"]) is None and _foreign_flag(["resume", "--resume"]) is None
