"""What reads only part of a large corpus: ``Corpus.sample``, the plan's facts and the tokenizer's text."""

from __future__ import annotations

from pathlib import Path

import pytest

from lunalm.config import CorpusConfig, TokenizerConfig
from lunalm.corpus import Corpus, builtin
from lunalm.plan import recommend
from lunalm.train import prepare


@pytest.fixture(scope="module")
def speeches(tmp_path_factory) -> Path:
    """60 real speeches, one file each, in three folders."""
    folder = tmp_path_factory.mktemp("speeches")
    for n, (speech_id, text) in enumerate(builtin.iter_speeches()):
        if n == 60:
            break
        path = folder / f"part{n % 3}" / f"{speech_id}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def corpus_of(folder: Path) -> Corpus:
    return Corpus(CorpusConfig(paths=(str(folder),), filter_non_prose=True))


def test_a_sample_is_a_spread_of_files_in_corpus_order_the_same_each_time(speeches: Path):
    corpus = corpus_of(speeches)
    total = corpus.bytes
    sample = corpus.sample(total // 4)
    sizes = [f.stat().st_size for f in sample.files]
    assert sum(sizes) >= total // 4 and sum(sizes) - max(sizes) < total // 4  # stops at the first file past it
    assert len(sample.files) < len(corpus.files)
    assert sample.files == [f for f in corpus.files if f in sample.files]  # corpus order
    assert {f.parent.name for f in sample.files} == {"part0", "part1", "part2"}  # not the first folder only
    assert corpus_of(speeches).sample(total // 4).files == sample.files
    texts = [d.text for d in sample.documents()]
    assert len(texts) == len(sample.files) and sample.report is not corpus.report
    assert corpus.report.files == {}  # the sample reports on its own


def test_a_small_corpus_or_a_few_files_are_read_whole(speeches: Path, tmp_path: Path):
    corpus = corpus_of(speeches)
    assert corpus.sample(corpus.bytes).files == corpus.files
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted(speeches.rglob("*.txt"))[:5]:
        (few / path.name).write_bytes(path.read_bytes())
    assert corpus_of(few).sample(1).files == corpus_of(few).files


def test_the_plan_of_a_large_corpus_is_estimated_from_a_sample_and_says_so(speeches: Path, monkeypatch):
    whole, _ = recommend.corpus_facts(CorpusConfig(paths=(str(speeches),), filter_non_prose=True), TokenizerConfig())
    monkeypatch.setattr(recommend, "READ_BYTES", corpus_of(speeches).bytes // 3)
    estimated, _ = recommend.corpus_facts(CorpusConfig(paths=(str(speeches),), filter_non_prose=True), TokenizerConfig())
    assert whole.read_share == 1.0 and 0.3 < estimated.read_share < 0.5
    assert whole.documents == estimated.documents == 60  # one a file: scaled by files, not bytes
    assert abs(estimated.chars / whole.chars - 1) < 0.15  # speeches differ in length; the sum is close


def test_the_tokenizer_learns_from_a_capped_sample(speeches: Path):
    everything = [d.text for d in corpus_of(speeches).documents()]
    texts = list(prepare.sample_texts(corpus_of(speeches), 100_000, 10**9))  # the first documents, to 100k chars
    chars = sum(map(len, texts))
    assert chars >= 100_000 and chars - len(texts[-1]) < 100_000 and len(texts) < len(everything)
    assert texts == everything[:len(texts)]
    corpus = corpus_of(speeches)
    spread = list(prepare.sample_texts(corpus, 10**9, corpus.bytes // 4))  # a spread of a quarter of the bytes
    assert len(spread) == len(corpus.sample(corpus.bytes // 4).files) < len(everything)
    assert set(spread) <= set(everything)


def test_a_large_corpus_of_few_files_is_planned_from_its_first_bytes(speeches: Path, tmp_path: Path, monkeypatch):
    """One big text file cannot be sampled by files: the plan reads its first READ_BYTES (where the reader is
    in the file, its text still held back subtracted) and scales by bytes."""
    folder = tmp_path / "one"
    folder.mkdir()
    texts = [path.read_text(encoding="utf-8") for path in sorted(speeches.rglob("*.txt"))]
    (folder / "all.txt").write_text("\n\n".join(texts), encoding="utf-8")
    config = CorpusConfig(paths=(str(folder),), filter_non_prose=True, max_document_chars=20_000)
    whole, _ = recommend.corpus_facts(config, TokenizerConfig())
    size = (folder / "all.txt").stat().st_size
    monkeypatch.setattr(recommend, "READ_BYTES", size // 3)
    first, _ = recommend.corpus_facts(config, TokenizerConfig())
    assert whole.read_share == 1.0 and not first.spread and 0.3 < first.read_share < 0.4
    assert abs(first.chars / whole.chars - 1) < 0.1 and abs(first.documents / whole.documents - 1) < 0.1


def test_the_tokenizer_of_a_few_large_files_learns_from_their_first_bytes(speeches: Path, tmp_path: Path):
    folder = tmp_path / "one"
    folder.mkdir()
    texts = [path.read_text(encoding="utf-8") for path in sorted(speeches.rglob("*.txt"))]
    (folder / "all.txt").write_text("\n\n".join(texts), encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(folder),), filter_non_prose=True, max_document_chars=20_000))
    size = corpus.bytes
    everything = [d.text for d in corpus.documents()]
    first = list(prepare.sample_texts(corpus, 10**9, size // 4))
    assert 0.2 < sum(map(len, first)) / sum(map(len, everything)) < 0.35 and first == everything[:len(first)]


def test_a_compressed_file_is_sampled_by_the_text_it_holds(speeches: Path, tmp_path: Path):
    """A sample's bytes count text: a .gz counts COMPRESSION_RATIO (3) times its size. Counted on disk, a
    quarter of the text's bytes read three quarters of a .txt.gz whose text is ~3 times its size."""
    import gzip

    texts = [path.read_text(encoding="utf-8") for path in sorted(speeches.rglob("*.txt"))]
    data = "\n\n".join(texts).encode("utf-8")
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir(), packed.mkdir()
    (plain / "all.txt").write_bytes(data)
    (packed / "all.txt.gz").write_bytes(gzip.compress(data))
    ratio = len(data) / (packed / "all.txt.gz").stat().st_size

    def share(folder: Path) -> float:
        corpus = Corpus(CorpusConfig(paths=(str(folder),), filter_non_prose=True, max_document_chars=20_000))
        everything = sum(len(d.text) for d in corpus.documents())
        return sum(map(len, prepare.sample_texts(corpus, 10**9, len(data) // 4))) / everything

    assert 0.2 < share(plain) < 0.35
    assert 0.2 * ratio / 3 < share(packed) < 0.35 * ratio / 3  # the guess of 3 against this text's ratio
    assert Corpus(CorpusConfig(paths=(str(packed),))).sample(len(data) // 4).stop_bytes == round(len(data) / 12)
