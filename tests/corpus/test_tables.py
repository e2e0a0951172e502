"""Datasets as people have them: Parquet, Arrow, CSV/TSV files and Hugging Face datasets (saved with
``save_to_disk``, or a Hub id in a Hugging Face cache the test fills itself), streamed row by row."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tests.conftest import TURKISH, run_luna

from lunalm.corpus.read import read_file
from lunalm.errors import CorpusError

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

ROWS = [{"id": i, "content": text} for i, text in enumerate(TURKISH)]


def _table():
    return pa.table({"id": [r["id"] for r in ROWS], "content": [r["content"] for r in ROWS]})


def _write(folder: Path) -> dict[str, Path]:
    """The same four rows as .parquet (two row groups), .arrow (file and stream formats), .csv and .tsv."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {kind: folder / f"rows.{kind}" for kind in ("parquet", "arrow", "csv", "tsv")}
    pq.write_table(_table(), files["parquet"], row_group_size=2)
    with pa.OSFile(str(files["arrow"]), "wb") as sink, pa.ipc.new_file(sink, _table().schema) as writer:
        writer.write_table(_table(), max_chunksize=3)
    for kind, delimiter in (("csv", ","), ("tsv", "\t")):
        with files[kind].open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "content"], delimiter=delimiter)
            writer.writeheader()
            writer.writerows(ROWS)
    return files


@pytest.mark.parametrize("kind", ["parquet", "arrow", "csv", "tsv"])
def test_each_row_of_the_text_column_is_one_document(tmp_path, kind):
    documents = list(read_file(_write(tmp_path)[kind], "content"))
    assert [d.text for d in documents] == TURKISH
    assert documents[1].name == f"{tmp_path / f'rows.{kind}'}:2"


def test_arrow_stream_format_as_datasets_writes_it(tmp_path):
    path = tmp_path / "data-00000-of-00001.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, _table().schema) as writer:
        writer.write_table(_table(), max_chunksize=1)
    assert [d.text for d in read_file(path, "content")] == TURKISH


def test_a_missing_or_non_text_column_names_the_columns(tmp_path):
    files = _write(tmp_path)
    for kind in ("parquet", "arrow", "csv"):
        with pytest.raises(CorpusError, match=r"no column 'text'; columns: id, content; pass the text column"):
            list(read_file(files[kind], "text"))
    with pytest.raises(CorpusError, match="column 'id' holds int64, not text"):
        list(read_file(files["parquet"], "id"))
    proc = run_luna("analyze", str(files["parquet"]))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(f"error: {files['parquet']}: no column 'text'")


def test_parquet_is_streamed_a_batch_at_a_time(tmp_path):
    import tracemalloc

    path = tmp_path / "big.parquet"
    row = "Türkiye'nin başkenti Ankara'dır. " * 30  # ~1 KB
    pq.write_table(pa.table({"text": [row] * 40_000}), path, row_group_size=2_000)  # ~40 MB of text
    tracemalloc.start()
    documents = read_file(path, "text")
    first = [next(documents) for _ in range(3)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [d.text for d in first] == [row] * 3
    assert peak < 8 * 2**20  # one 1,024-row batch (~1 MB), not the 40 MB column


def test_folders_of_parquet_and_arrow_are_read_by_default_csv_when_included(tmp_path):
    _write(tmp_path / "data")
    proc = run_luna("analyze", str(tmp_path / "data"), "--text-field", "content", "--json", "--files", "--no-dedup")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert sorted(Path(f).name for f in report["files"]) == ["rows.arrow", "rows.parquet"]
    assert report["corpus"]["documents"] == 8  # the same four rows in each file
    assert report["corpus"]["characters"] == 2 * sum(len(text) for text in TURKISH)
    proc = run_luna("analyze", str(tmp_path / "data"), "--include", "*.csv", "--text-field", "content", "--json",
                    "--files")
    assert [Path(f).name for f in json.loads(proc.stdout)["files"]] == ["rows.csv"]
    from lunalm.config import CorpusConfig
    from lunalm.corpus.discover import unread_tables

    default = CorpusConfig(paths=(str(tmp_path / "data"),))
    note = unread_tables(default.paths, default.include, default.exclude)  # what plan and train print
    size = (tmp_path / "data" / "rows.csv").stat().st_size + (tmp_path / "data" / "rows.tsv").stat().st_size
    assert note == (f"not read: 2 table file(s) (rows.csv, rows.tsv; {size / 1e6:.1f} MB) that --include leaves "
                    "out; to train on their rows add --include '*.csv' --include '*.tsv' --text-field COLUMN and, to "
                    "keep the 2 kind(s) of file read now (--include replaces the default list), --include "
                    "'*.parquet' --include '*.arrow'")
    assert unread_tables(default.paths, default.include + ("*.csv",), ("*.tsv",)) is None
    # a JSON array file beside them was skipped without a word too
    (tmp_path / "data" / "records.json").write_text(json.dumps([{"content": t} for t in TURKISH]), encoding="utf-8")
    note = unread_tables(default.paths, default.include, ("*.csv", "*.tsv"))
    assert note.startswith("not read: 1 table or JSON file(s) (records.json;") and "--include '*.json'" in note
    proc = run_luna("analyze", str(tmp_path / "data"), "--text-field", "content")
    assert "note: not read: 3 table or JSON file(s) (records.json, rows.csv, rows.tsv;" in " ".join(proc.stdout.split())


def test_hf_dataset_saved_with_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:3]),
                                   "test": datasets.Dataset.from_list(ROWS[3:])})
    splits.save_to_disk(str(tmp_path / "saved"))
    for spec, expected in (("saved", TURKISH[:3]), ("saved:test", TURKISH[3:])):
        proc = run_luna("analyze", "--hf-dataset", spec, "--text-field", "content", "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["corpus"]["characters"] == sum(len(t) for t in expected)
    bad = run_luna("analyze", "--hf-dataset", "saved:dev", "--text-field", "content", cwd=tmp_path)
    assert bad.returncode == 2 and "no split 'dev'; splits: train, test" in bad.stderr


def test_a_hub_dataset_downloaded_into_a_folder(tmp_path):
    """`huggingface-cli download --repo-type dataset NAME --local-dir sozler` (or a git clone) gives the Hub's
    files: data/train-0000k-of-00002.parquet, data/validation-00000-of-00001.parquet and a README.md card.
    --hf-dataset sozler was "not a dataset saved with save_to_disk", and sozler as PATH read both splits and
    the card without a word: the model trained on the validation text it was then scored on."""
    folder = tmp_path / "sozler"
    (folder / "data").mkdir(parents=True)
    for name, rows in (("train-00000-of-00002", ROWS[:1]), ("train-00001-of-00002", ROWS[1:3]),
                       ("validation-00000-of-00001", ROWS[3:])):
        pq.write_table(pa.table({"content": [r["content"] for r in rows]}), folder / "data" / f"{name}.parquet")
    (folder / "README.md").write_text("---\nconfigs:\n- config_name: default\n---\n# Sözler\n", encoding="utf-8")
    for spec, expected in (("sozler", TURKISH[:3]), ("sozler:validation", TURKISH[3:])):
        proc = run_luna("analyze", "--hf-dataset", spec, "--text-field", "content", "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["corpus"]["characters"] == sum(len(t) for t in expected), spec
    proc = run_luna("analyze", "sozler", "--text-field", "content", cwd=tmp_path)
    assert ("note: sozler holds a dataset's validation split (data/validation-00000-of-00001.parquet) beside its "
            "other files, and all are read as one corpus (with its dataset card, README.md): the model trains on the "
            "text it should be scored on; leave it out with --exclude '*validation-*', or pass --hf-dataset sozler "
            "(its train split; sozler:validation for that one)") in " ".join(proc.stdout.split())
    alone = run_luna("analyze", "sozler", "--text-field", "content", "--exclude", "*validation-*", cwd=tmp_path)
    assert alone.returncode == 0 and "note:" not in alone.stdout
    from lunalm.corpus.hf_dataset import data_file  # allenai/c4 ships JSON Lines as .json.gz

    assert data_file(Path("multilingual/c4-tr.tfrecord-00000-of-01024.json.gz")) and data_file(Path("train.json"))
    assert not data_file(Path("dataset_infos.json")) and not data_file(Path("README.md"))


def test_a_save_to_disk_folder_as_path_names_its_splits_not_its_metadata(tmp_path):
    """Its state.json and dataset_info.json were "table or JSON files --include leaves out; to train on their
    rows add --include '*.json'", which then failed on state.json."""
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS[:3]).save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:3]),
                          "test": datasets.Dataset.from_list(ROWS[3:])}).save_to_disk(str(tmp_path / "two"))
    one = run_luna("analyze", "one", "--text-field", "content", cwd=tmp_path)
    assert one.returncode == 0 and "note:" not in one.stdout
    two = " ".join(run_luna("analyze", "two", "--text-field", "content", cwd=tmp_path).stdout.split())
    assert "note: two holds a dataset's test split (test/data-00000-of-00001.arrow)" in two
    assert "--exclude '*test/*', or pass --hf-dataset two (its train split; two:test" in two
    assert "--include '*.json'" not in two


def test_a_treebanks_dev_and_test_files_are_named_when_read_with_its_training_file(tmp_path):
    """UD_Turkish-IMST holds tr_imst-ud-{train,dev,test}.conllu: `luna train UD_Turkish-IMST --include
    '*.conllu'` trained on its test sentences without a word. A word inside a name (devlet.txt) is no split."""
    from lunalm.corpus.hf_dataset import splits_read_together

    for name in ("tr_imst-ud-train.conllu", "tr_imst-ud-dev.conllu", "tr_imst-ud-test.conllu", "devlet.txt"):
        (tmp_path / name).write_text("# text = Güldü.\n1\tGüldü\tgül\tVERB\t_\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    assert splits_read_together([str(tmp_path)], ("*.conllu", "*.txt"), ()) == (
        f"{tmp_path} holds a dataset's dev and test splits (tr_imst-ud-dev.conllu, tr_imst-ud-test.conllu) beside "
        "its other files, and all are read as one corpus: the model trains on the text it should be scored on; "
        "leave them out with --exclude '*-dev.*' --exclude '*-test.*'")
    assert splits_read_together([str(tmp_path)], ("*.conllu",), ("*-dev.*", "*-test.*")) is None


def _hub_cache(home: Path, repo_id: str) -> None:
    """The layout huggingface_hub's cache gives a downloaded dataset: refs/main -> snapshots/<commit>/..."""
    repo = home / "hub" / f"datasets--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    layout = (("tr", "train", ROWS[:2]), ("tr", "test", ROWS[2:3]), ("az", "train", ROWS[3:])) if "flat" not in \
        repo_id else (("data", "train", ROWS[:3]), ("data", "test", ROWS[3:]))  # one config: data/SPLIT-*.parquet
    for config, split, rows in layout:
        (snapshot / config).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"content": [r["content"] for r in rows]}),
                       snapshot / config / f"{split}-00000-of-00001.parquet")


def test_hub_dataset_through_the_hf_cache_offline(tmp_path):
    _hub_cache(tmp_path / "hf", "lunalm-test/sozler")
    _hub_cache(tmp_path / "hf", "lunalm-test/flat")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    for spec, expected in (("lunalm-test/sozler:tr", TURKISH[:2]), ("lunalm-test/sozler:tr:test", TURKISH[2:3]),
                           ("lunalm-test/sozler:az:train", TURKISH[3:]), ("lunalm-test/flat", TURKISH[:3]),
                           ("lunalm-test/flat:test", TURKISH[3:])):
        proc = _luna_env(env, "analyze", "--hf-dataset", spec, "--text-field", "content", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["corpus"]["characters"] == sum(len(t) for t in expected), spec
    missing = _luna_env(env, "analyze", "--hf-dataset", "nobody/nothing", "--text-field", "content")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    line = missing.stderr.strip().splitlines()[-1]
    assert line == ("error: --hf-dataset nobody/nothing: no such local path, and dataset nobody/nothing is not in "
                    f"the Hugging Face cache ({tmp_path / 'hf' / 'hub'}); HF_HUB_OFFLINE=1 forbids downloading it; "
                    "run once online, or `huggingface-cli download --repo-type dataset nobody/nothing`"), line


def _luna_env(env: dict, *args: str):
    return run_luna(*args, env=env)


def test_a_tsv_with_stray_quotes_keeps_one_row_per_line(tmp_path):
    """As in the OffensEval-TR training TSV: written without quoting, and a tweet that opens a quotation and
    never closes it. A quoting reader would swallow the rows up to the next quote."""
    rows = ['"Ecdadımızın heybeti malum   Fıtrat değişir sanma', "Dünyanız bu kadar pisken", '"Mansur Çalar" dedi',
            'Bugün tonla plan yaptım "ama', '"Önden yüklemeli faiz indirme" mi?',
            "satır\u2028ayırıcı bir satırı bölmez"]  # U+2028 ends a line for str.splitlines, not for csv
    path = tmp_path / "tweets.tsv"
    path.write_text("id\ttweet\tsubtask_a\n" + "".join(f"{i}\t{t}\tNOT\n" for i, t in enumerate(rows)),
                    encoding="utf-8")
    assert [d.text for d in read_file(path, "tweet")] == rows


def test_quoted_fields_are_unwrapped_and_real_quoting_is_kept(tmp_path):
    """Fields wrapped whole in quotes (pandas, Excel) read as a quoting reader reads them; a file whose quoted
    fields hold the delimiter or a line break is read with quoting."""
    simple = tmp_path / "simple.csv"
    simple.write_text('id,text\n1,"Merhaba ""dünya"""\n2,"Ankara"\n3,düz metin\n', encoding="utf-8")
    assert [d.text for d in read_file(simple, "text")] == ['Merhaba "dünya"', "Ankara", "düz metin"]
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('id,text\n1,"Evet, hayır"\n2,"iki\nsatır"\n', encoding="utf-8")
    assert [d.text for d in read_file(quoted, "text")] == ["Evet, hayır", "iki\nsatır"]


@pytest.mark.parametrize("encoding", ["cp1254", "utf-16", "utf-8-sig"])
def test_csv_in_the_encodings_spreadsheets_save(tmp_path, encoding):
    """Excel on a Turkish Windows saves CSV in cp1254; "Unicode text" is UTF-16 with a BOM; "CSV UTF-8"
    starts with a BOM. Each reads as the same rows."""
    texts = ["Şişli'de güzel bir gün", "Çağlayan ırmağı öğle üstü"]
    path = tmp_path / "rows.csv"
    path.write_bytes(("id;metin\n" + "".join(f"{i};{t}\n" for i, t in enumerate(texts))).replace(";", ",")
                     .encode(encoding))
    assert [d.text for d in read_file(path, "metin")] == texts


@pytest.mark.parametrize("kind", ["parquet", "arrow", "csv", "tsv", "jsonl", "json"])
def test_several_text_fields_make_one_document(tmp_path, kind):
    """``--text-field question,answer``: a question-and-answer data set (GSM8K's JSONL has no "text") trains
    on both, joined by a blank line; a blank one is left out, a missing one is named."""
    rows = [{"id": 1, "question": "Ali'nin 3 elması var.", "answer": "Cevap: 3"},
            {"id": 2, "question": "Ayşe kaç yaşında?", "answer": ""}]
    path = tmp_path / f"qa.{kind}"
    if kind in ("parquet", "arrow"):
        table = pa.table({key: [row[key] for row in rows] for key in rows[0]})
        if kind == "parquet":
            pq.write_table(table, path)
        else:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
    elif kind in ("csv", "tsv"):
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="," if kind == "csv" else "\t")
            writer.writeheader()
            writer.writerows(rows)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    assert [d.text for d in read_file(path, "question, answer")] == [
        "Ali'nin 3 elması var.\n\nCevap: 3", "Ayşe kaç yaşında?"]
    with pytest.raises(CorpusError, match="'solution'"):
        list(read_file(path, "question,solution"))


def test_a_table_without_a_header_row_goes_by_column_numbers(tmp_path):
    """JAK-OffensEval's dev.tsv has no header: its first tweet was taken for a column's name, and
    `--text-field 1` silently trained on the label column (2 documents of 2 characters)."""
    from lunalm.corpus.tables import read_table

    path = tmp_path / "dev.tsv"
    path.write_text("23163\t@USER ve bilumum medya okur\t1\n17775\tHayırlı sabahlar, iyi yayınlar\t0\n"
                    "16312\tTelevizyonda akşam kuşağı\t0\n", encoding="utf-8")
    assert list(read_table(path, "2")) == ["@USER ve bilumum medya okur", "Hayırlı sabahlar, iyi yayınlar",
                                           "Televizyonda akşam kuşağı"]
    with pytest.raises(CorpusError, match=r"no column 'text'; its first row reads as data, not names, so the "
                                          r"columns go by number: 1 \('23163'\), 2 \('@USER ve bilumum medya okur'\), "
                                          r"3 \('1'\)"):
        list(read_table(path, "text"))
    form = tmp_path / "form.csv"  # a form's export: its header holds the questions, long as sentences
    form.write_text("Zaman damgası,Bu ürünü bir arkadaşınıza tavsiye eder misiniz neden\n"
                    "2024-01-01,Evet çünkü çok güzel\n", encoding="utf-8")
    question = "Bu ürünü bir arkadaşınıza tavsiye eder misiniz neden"
    assert list(read_table(form, question)) == ["Evet çünkü çok güzel"]
    with pytest.raises(CorpusError, match=r"column 3 holds only numbers \(3 rows\), no text"):
        list(read_table(path, "3"))
    named = tmp_path / "named.csv"
    named.write_text("id,metin\n1,Birinci satır.\n2,İkinci satır.\n", encoding="utf-8")
    assert list(read_table(named, "metin")) == ["Birinci satır.", "İkinci satır."]


def test_tab_separated_sentence_pairs_without_a_header(tmp_path):
    """The first lines of tur.txt in devcem/NMT-on-PHP (54040b3), Tatoeba's English-Turkish pairs as
    manythings.org/anki ships them: no header row, 2 columns. As .txt it had a note saying its columns were
    named "Hi." and "Merhaba."; as .tsv, --text-field 2 was "no column '2'; columns: Hi., Merhaba." and the
    Turkish column was --text-field Merhaba., its first pair lost."""
    from lunalm.corpus.discover import tables_as_text
    from lunalm.corpus.tables import read_table

    pairs = "Hi.\tMerhaba.\nHi.\tSelam.\nRun!\tKaç!\nRun!\tKoş!\nWho?\tKim?\nFire!\tAteş!\n"
    (tmp_path / "tur.txt").write_text(pairs, encoding="utf-8")
    assert tables_as_text([str(tmp_path)], ("*.txt",), ()) == (
        f"{tmp_path / 'tur.txt'} looks like a table saved as text, without a header row (2 tab-separated columns; "
        "its first row: 1 ('Hi.'), 2 ('Merhaba.')): it is read as one text, every column included. To train on one "
        "column, rename it to tur.tsv and add --include '*.tsv' --text-field NUMBER")
    (tmp_path / "tur.txt").rename(tmp_path / "tur.tsv")
    assert list(read_table(tmp_path / "tur.tsv", "2")) == ["Merhaba.", "Selam.", "Kaç!", "Koş!", "Kim?", "Ateş!"]
    (tmp_path / "siir.txt").write_text("Sessiz Gemi\n\tArtık demir almak günü gelmişse zamandan,\nMeçhule giden bir "
                                       "gemi kalkar bu limandan.\n\tSanki yolcusu yokmuş gibi\n", encoding="utf-8")  # indents
    assert tables_as_text([str(tmp_path)], ("*.txt",), ()) is None


def test_a_table_saved_as_text_is_named_with_how_to_read_its_rows(tmp_path):
    """yunyus/Turkish-Poem-GPT's data/turkish_poems.txt is a CSV: read as one text, its header and quotes
    stayed in the training text. Prose whose first line has a comma is not taken for one."""
    from lunalm.corpus.discover import tables_as_text

    (tmp_path / "turkish_poems.txt").write_text(
        'poem_name,poet_name,poem_text,rank\nBeklenen,Necip Fazıl Kısakürek,"Ne hasta bekler sabahı,\n'
        'Ne taze ölüyü mezar.",12\n', encoding="utf-8")
    (tmp_path / "mektup.txt").write_text("Sevgili dostum, merhaba.\nBugün hava, dün olduğu gibi, güzel.\n",
                                         encoding="utf-8")
    note = tables_as_text([str(tmp_path)], ("*.txt",), ())
    assert note == (f"{tmp_path / 'turkish_poems.txt'} looks like a table saved as text (columns: poem_name, "
                    "poet_name, poem_text, rank): it is read as one text, its header and quotes included. To train "
                    "on its rows, rename it to turkish_poems.csv and add --include '*.csv' --text-field poem_text")
    (tmp_path / "turkish_poems.txt").unlink()
    assert tables_as_text([str(tmp_path)], ("*.txt",), ()) is None


def test_a_hub_folder_whose_files_name_no_train_split_leaves_its_held_out_split_out(tmp_path):
    """mC4's Turkish files are c4-tr.tfrecord-0000k-of-01024.json.gz beside c4-tr-validation.tfrecord-…: no file
    starts with "train", and --hf-dataset FOLDER read the validation file with the rest."""
    import gzip

    from lunalm.corpus.hf_dataset import _snapshot_files

    folder = tmp_path / "mc4" / "multilingual"
    folder.mkdir(parents=True)
    for name, texts in (("c4-tr.tfrecord-00000-of-01024", TURKISH[:2]), ("c4-tr.tfrecord-00001-of-01024", TURKISH[2:3]),
                        ("c4-tr-validation.tfrecord-00000-of-00008", TURKISH[3:])):
        lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
        (folder / f"{name}.json.gz").write_bytes(gzip.compress(lines.encode("utf-8")))
    names = [Path(f).name for f in _snapshot_files("mc4", tmp_path / "mc4", [])]
    assert names == ["c4-tr.tfrecord-00000-of-01024.json.gz", "c4-tr.tfrecord-00001-of-01024.json.gz"]
    held = [Path(f).name for f in _snapshot_files("mc4:validation", tmp_path / "mc4", ["validation"])]
    assert held == ["c4-tr-validation.tfrecord-00000-of-00008.json.gz"]


def test_a_tab_separated_csv_is_read_by_its_tabs(tmp_path):
    """Tatoeba's sentences.csv is "id<TAB>lang<TAB>text" without a header: read with commas, every line was one
    column ("no column '3'; columns: 1<TAB>cmn<TAB>…"), and a sentence's own commas would have split it."""
    from lunalm.corpus.tables import read_table

    rows = ["1\tcmn\t我們試試看！", "1276\teng\tLet's try something.", "15921\ttur\tBir şey deneyelim.",
            "15922\ttur\tEvet, hayır, belki."]
    (tmp_path / "sentences.csv").write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")
    assert list(read_table(tmp_path / "sentences.csv", "3")) == [row.split("\t")[2] for row in rows]
    (tmp_path / "soru.csv").write_text("soru,cevap\nNasılsın?\tİyi,Teşekkürler\nNe?\tHiç,Yok\n", encoding="utf-8")
    assert list(read_table(tmp_path / "soru.csv", "cevap")) == ["Teşekkürler", "Yok"]  # tabs in rows, none in the header
