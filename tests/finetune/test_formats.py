"""Instruction data as real datasets ship it: an Alpaca JSON array, ShareGPT conversations, input/output and
instruction/response pairs, a question/answer CSV, a cp1254 file, empty rows and NaN answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lunalm.errors import DataError
from lunalm.finetune.instructions import build_instruction_data, detect_format, read_examples
from tests.finetune.fthelp import tiny_tokenizer

PAIRS = [("Başkent neresi?", "Ankara."), ("Bir şehir söyle.", "İstanbul güzel bir şehirdir."),
         ("Denizin rengi ne?", "Mavi."), ("Kaç gün var haftada?", "Yedi.")]
EXPECTED = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in PAIRS]


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("name, text, fmt", [
    ("alpaca.json", json.dumps([{"instruction": q, "input": "", "output": a} for q, a in PAIRS], ensure_ascii=False),
     "alpaca"),
    ("wrapped.json", json.dumps({"data": [{"instruction": q, "output": a} for q, a in PAIRS]}), "alpaca"),
    ("jessy.jsonl", "".join(json.dumps({"input": q, "output": a}) + "\n" for q, a in PAIRS), "alpaca"),
    ("khazar.jsonl", "".join(json.dumps({"instruction": q, "response": a}) + "\n" for q, a in PAIRS), "alpaca"),
    ("qa.csv", "question,answer\n" + "".join(f'"{q}","{a}"\n' for q, a in PAIRS), "alpaca"),
    ("soru.tsv", "soru\tcevap\n" + "".join(f"{q}\t{a}\n" for q, a in PAIRS), "alpaca"),
    ("sharegpt.jsonl", "".join(json.dumps({"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]})
                               + "\n" for q, a in PAIRS), "chat"),
])
def test_real_instruction_layouts_read_as_the_same_examples(tmp_path: Path, name: str, text: str, fmt: str):
    path = _write(tmp_path / name, text)
    assert detect_format([path]) == fmt
    assert read_examples(path, fmt) == EXPECTED


def test_a_json_string_per_line_is_text_as_luna_train_reads_it(tmp_path: Path):
    """turkish-nlp-suite's Corona-mini-dataset: a bare JSON string per line. `luna train` trained on it and
    `luna eval` refused it ("expected a JSON object per record, got str; give --format")."""
    from lunalm.errors import DataError

    path = _write(tmp_path / "corona.jsonl", '"Koronavirüs salgını yayıldı."\n"İkinci yorum."\n')
    assert detect_format([path]) == "text"
    with pytest.raises(DataError, match="expected a JSON object or string per record, got list"):
        detect_format([_write(tmp_path / "rows.jsonl", "[1, 2]\n")])


def test_the_format_check_and_the_reading_decode_a_file_once(tmp_path: Path, monkeypatch):
    import lunalm.corpus.encoding as encoding

    decoded = []
    real = encoding.decode_bytes
    monkeypatch.setattr(encoding, "decode_bytes", lambda data, *rest: decoded.append(len(data)) or real(data, *rest))
    path = _write(tmp_path / "big.jsonl", "".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a in PAIRS))
    assert read_examples(path, detect_format([path])) == EXPECTED
    assert decoded == [path.stat().st_size]
    path.write_text(path.read_text(encoding="utf-8") + json.dumps({"instruction": "Yeni?", "output": "Evet."}) + "\n",
                    encoding="utf-8")  # changed since: read again
    assert len(read_examples(path, "alpaca")) == len(EXPECTED) + 1 and len(decoded) == 2


def test_a_cp1254_file_reads_as_its_text_and_empty_or_nan_rows_are_left_out_and_counted(tmp_path: Path):
    rows = [{"instruction": q, "output": a} for q, a in PAIRS]
    path = _write(tmp_path / "cp1254.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "cp1254")
    assert read_examples(path, detect_format([path])) == EXPECTED
    holes = _write(tmp_path / "holes.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
                   + '{"instruction": "", "output": "x"}\n{"instruction": "Boş", "output": NaN}\n'
                   '{"instruction": "Boş", "output": null}\n')
    data = build_instruction_data([holes], "alpaca", tiny_tokenizer(tmp_path / "tok"), 64, 0.25, 0)
    assert data.empty == 3 and len(data.train[0]) + len(data.val[0]) == 4


def test_a_record_without_known_fields_names_them_and_what_is_accepted(tmp_path: Path):
    path = _write(tmp_path / "odd.jsonl", json.dumps({"instruction": "x", "cevabı": "y"}) + "\n")
    assert detect_format([path]) == "text"  # no answer field: plain text needs --text-field
    with pytest.raises(DataError, match=r"odd\.jsonl:1: found fields instruction, cevabı; an instruction example "
                                        r"needs a prompt \(instruction, prompt, question"):
        read_examples(path, "alpaca")
    numbers = _write(tmp_path / "numbers.jsonl", json.dumps({"instruction": "x", "output": 5}) + "\n")
    with pytest.raises(DataError, match="field 'output' holds int 5, not text"):
        read_examples(numbers, "alpaca")


def test_eval_scores_an_instruction_fine_tunes_held_out_answers_and_files_by_text_field(tmp_path: Path, monkeypatch,
                                                                                      capsys):
    from lunalm.cli import main
    from tests.finetune.fthelp import ALPACA, tiny_base, write_jsonl
    from tests.finetune.test_finetune import QUICK, _start

    base = tiny_base(tmp_path / "gpt2")
    rows = [dict(row, output=row["output"] + f" {n}") for n, row in enumerate(ALPACA)]  # 16 distinct examples
    data = write_jsonl(tmp_path / "alpaca.jsonl", rows)
    run, status = _start(tmp_path, monkeypatch, "--base", str(base), str(data), "--name", "ft", "--max-steps", "2",
                         "--context", "128")
    assert status == "completed"
    checkpoint = str(run.run_dir / "checkpoints" / "final")
    assert main(["eval", checkpoint, "--json", "--device", "cpu"]) == 0
    held_out = json.loads(capsys.readouterr().out)
    assert held_out["source"].startswith("the run's ") and "held-out alpaca example(s)" in held_out["source"]
    assert held_out["method"].startswith("each example in one window") and held_out["tokens"] > 0
    assert main(["eval", checkpoint, str(data), "--json", "--device", "cpu"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert whole["examples"] == 16 and whole["tokens"] > held_out["tokens"]
    laws = write_jsonl(tmp_path / "laws.jsonl", [{"content": "Bu kanun yayımı tarihinde yürürlüğe girer."},
                                                 {"content": "Bu kanunu Cumhurbaşkanı yürütür."}])
    assert main(["eval", checkpoint, str(laws), "--text-field", "content", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 2
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", "--base", str(base), str(data), *QUICK, "--context", "1024"]) == 2
    assert "--context 1024: expected 1 to 128 tokens" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()] == ["ft"]  # no half-made run


def test_a_named_sharegpt_assistant_semicolon_csv_and_prompts_that_fill_the_window(tmp_path: Path):
    named = _write(tmp_path / "jessy.jsonl", "".join(
        json.dumps({"conversations": [{"from": "human", "value": q}, {"from": "jessy", "value": a}]}) + "\n"
        for q, a in PAIRS))
    assert read_examples(named, detect_format([named])) == EXPECTED
    two = _write(tmp_path / "two.jsonl", json.dumps({"conversations": [{"from": "ali", "value": "x"},
                                                                        {"from": "jessy", "value": "y"}]}) + "\n")
    with pytest.raises(DataError, match="speakers ali, jessy are unknown"):
        read_examples(two, "chat")
    semicolons = _write(tmp_path / "excel.csv", "soru;cevap\n" + "".join(f"{q};{a}\n" for q, a in PAIRS), "cp1254")
    assert detect_format([semicolons]) == "alpaca" and read_examples(semicolons, "alpaca") == EXPECTED
    from lunalm.corpus.tables import read_table

    assert list(read_table(semicolons, "cevap")) == [a for _, a in PAIRS]
    long_prompt = [{"instruction": "çok uzun bir soru " * 40, "output": "Kısa."}] + [
        {"instruction": q, "output": a} for q, a in PAIRS]
    data = build_instruction_data([_write(tmp_path / "long.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                                           for r in long_prompt))],
                                  "alpaca", tiny_tokenizer(tmp_path / "tok"), 64, 0.25, 0)
    assert data.no_room == 1 and len(data.train[0]) + len(data.val[0]) == 4


def test_what_is_left_out_is_named_and_a_huge_answer_is_cut_before_encoding(tmp_path: Path):
    """30 real prompts whose answers were all empty were refused as "its prompt fills the window"; luna eval
    scored 143 of 150 examples without saying why; a 20 M-character answer took a minute and 8.6 GB to encode
    for a 256-token window. The ids of a long example are the same as when its whole text was encoded."""
    import numpy as np

    from lunalm.finetune.instructions import compile_template, DEFAULT_TEMPLATE, tokenize_example

    tokenizer = tiny_tokenizer(tmp_path / "tok")
    empty = _write(tmp_path / "empty.jsonl", "".join(json.dumps({"instruction": q, "output": ""}, ensure_ascii=False)
                                                     + "\n" for q, _ in PAIRS))
    with pytest.raises(DataError, match=r"no example to train on: of the 4 read, 4 have an empty prompt or answer"):
        build_instruction_data([empty], "alpaca", tokenizer, 64, 0.25, 0)
    rows = [{"instruction": q, "output": a} for q, a in PAIRS] + [{"instruction": "Boş", "output": ""}] * 2
    mixed = _write(tmp_path / "mixed.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    data = build_instruction_data([mixed], "alpaca", tokenizer, 64, 1.0, 0)
    assert data.read == 6 and data.left_out() == " (2 left out: 2 with an empty prompt or answer)"
    huge = [{"role": "user", "content": "Uzun yaz."}, {"role": "assistant", "content": "çok uzun bir cevap " * 20000}]
    template = compile_template(DEFAULT_TEMPLATE)
    whole, whole_targets = tokenize_example(huge, template, tokenizer)
    cut, cut_targets = tokenize_example(huge, template, tokenizer, limit=65)
    assert len(whole) > 300_000 and 65 < len(cut) < 5_000
    assert cut[:65] == whole[:65] and cut_targets[:65] == whole_targets[:65]
    long = _write(tmp_path / "long.jsonl", json.dumps({"instruction": "Uzun yaz.", "output": huge[1]["content"]},
                                                      ensure_ascii=False) + "\n")
    data = build_instruction_data([long], "alpaca", tokenizer, 64, 0.0, 0)
    assert data.truncated == 1 and np.array_equal(data.train[0][0], whole[:64])


def test_a_lunalm_checkpoint_as_base_is_named_by_its_run():
    """A fine-tune of runs/thrG1/checkpoints/best was "fine-tuned best" in the summary and
    finetune-best-… as a run."""
    from lunalm.finetune.base import base_label

    assert base_label("/work/runs/thrG1/checkpoints/best") == "thrG1/best"
    assert base_label("runs/x/checkpoints/step-00000400") == "x/step-00000400"
    assert base_label("bases/gpt2-tiny") == "gpt2-tiny" and base_label("openai-community/gpt2") == "gpt2"
