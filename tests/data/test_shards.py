"""Token cache: document-level split, exact token counts, cache reuse, atomic builds."""

import json
import re

import numpy as np
import pytest

from lunalm.data.shards import ShardSet, build_shards, cache_key, split_for_encoding
from lunalm.errors import DataError
from lunalm.tokenizer import train_bpe, train_char

WORDS = "elma armut kiraz çilek üzüm incir şeftali ayva nar erik".split()


def make_documents(n: int) -> list[str]:
    """Documents tagged with a unique id word ``docNNNN`` so the split can be checked from tokens."""
    return [f"doc{i:04d} " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(5 + i % 7)) + "."
            for i in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe(make_documents(200), vocab_size=512)


def build(docs, tokenizer, tmp_path, **kwargs):
    kwargs.setdefault("progress", False)
    return build_shards(docs, tokenizer, tmp_path / "cache", "k1", **kwargs)


def doc_ids_in(shards, split, tokenizer) -> list[str]:
    text = tokenizer.decode(np.asarray(shards.split(split)).tolist())
    return re.findall(r"doc\d{4}", text)


def test_train_and_val_share_no_document(tmp_path, tokenizer):
    docs = make_documents(100)
    shards = build(docs, tokenizer, tmp_path, val_fraction=0.2)
    train, val = doc_ids_in(shards, "train", tokenizer), doc_ids_in(shards, "val", tokenizer)
    assert set(train).isdisjoint(val)
    assert sorted(train + val) == sorted(f"doc{i:04d}" for i in range(100))
    assert 5 <= len(val) <= 40  # ~20 % of 100
    assert shards.n_documents("val") == len(val) and shards.n_documents("train") == len(train)


def test_meta_counts_are_exact(tmp_path, tokenizer):
    docs = make_documents(60)
    shards = build(docs, tokenizer, tmp_path, val_fraction=0.25)
    meta = shards.meta
    total_tokens = sum(len(tokenizer.encode(d)) + 1 for d in docs)  # + eot per document
    total_bytes = sum(len(d.encode("utf-8")) for d in docs)
    splits = meta["splits"]
    assert splits["train"]["tokens"] + splits["val"]["tokens"] == total_tokens
    assert splits["train"]["bytes"] + splits["val"]["bytes"] == total_bytes
    assert splits["train"]["documents"] + splits["val"]["documents"] == 60
    for name in ("train", "val"):
        tokens = shards.split(name)
        assert len(tokens) == shards.n_tokens(name) == sum(s["tokens"] for s in splits[name]["shards"])
        assert int(np.sum(np.asarray(tokens) == tokenizer.eot_id)) == splits[name]["documents"]
        assert tokens[-1] == tokenizer.eot_id
        assert shards.bytes_per_token(name) == splits[name]["bytes"] / splits[name]["tokens"]
    assert meta["tokenizer_hash"] == tokenizer.content_hash
    assert meta["dtype"] == "uint16" and shards.split("train").dtype == np.uint16
    assert meta["format_version"] == 4 and meta["vocab_size"] == tokenizer.vocab_size


def test_each_document_encoded_then_eot(tmp_path, tokenizer):
    docs = make_documents(30)
    shards = build(docs, tokenizer, tmp_path, val_fraction=0.0)
    expected = []
    for d in docs:
        expected += tokenizer.encode(d) + [tokenizer.eot_id]
    assert np.asarray(shards.split("train")).tolist() == expected  # order kept with val_fraction 0
    assert shards.n_tokens("val") == 0 and len(shards.split("val")) == 0


def test_split_is_deterministic_and_seeded(tmp_path, tokenizer):
    docs = make_documents(80)
    a = build_shards(docs, tokenizer, tmp_path, "a", progress=False)
    b = build_shards(docs, tokenizer, tmp_path, "b", progress=False)
    c = build_shards(docs, tokenizer, tmp_path, "c", seed=7, progress=False)
    assert doc_ids_in(a, "val", tokenizer) == doc_ids_in(b, "val", tokenizer)
    assert doc_ids_in(a, "val", tokenizer) != doc_ids_in(c, "val", tokenizer)


@pytest.mark.parametrize("val_fraction", [0.001, 0.999])
def test_two_documents_give_both_splits(tmp_path, tokenizer, val_fraction):
    shards = build(make_documents(2), tokenizer, tmp_path, val_fraction=val_fraction)
    assert shards.n_documents("train") == 1 and shards.n_documents("val") == 1


def test_one_document_is_cut_so_both_splits_get_text(tmp_path, tokenizer):
    """One text file is one document: its tail (at a paragraph break near 90 %) becomes validation."""
    paragraphs = [" ".join(make_documents(40)[i:i + 4]) for i in range(0, 40, 4)]  # 10 paragraphs
    text = "\n\n".join(paragraphs) + "\n"
    shards = build([text], tokenizer, tmp_path, val_fraction=0.1)
    train = tokenizer.decode(np.asarray(shards.split("train")).tolist())
    val = tokenizer.decode(np.asarray(shards.split("val")).tolist())
    eot = tokenizer.eot_token
    assert (train, val) == ("\n\n".join(paragraphs[:9]) + "\n\n" + eot, paragraphs[9] + "\n" + eot)
    splits = shards.meta["splits"]
    assert splits["train"]["bytes"] + splits["val"]["bytes"] == len(text.encode("utf-8"))
    assert (shards.n_documents("train"), shards.n_documents("val")) == (1, 1)
    alone = build(["tek bir kelime"], tokenizer, tmp_path / "alone", val_fraction=0.1)
    assert alone.n_tokens("train") > 0  # cut at the space: both halves non-empty
    unbreakable = build(["tek"], tokenizer, tmp_path / "unbreakable", val_fraction=0.1)
    assert unbreakable.n_tokens("val") == 0 and unbreakable.n_documents("train") == 1


def test_every_long_document_gives_its_tail_to_validation(tmp_path, tokenizer):
    """A book beside a short note: the book's last tenth validates (not the note alone, not the book whole);
    short documents are still placed whole by their hash."""
    from lunalm.data.shards import LONG_DOCUMENT_CHARS

    paragraphs = [" ".join(make_documents(1000)[i:i + 10]) for i in range(0, 1000, 10)]  # 100 paragraphs
    book = "\n\n".join(paragraphs) + "\n"
    other = "\n\n".join(p.replace("doc", "kit") for p in paragraphs) + "\n"  # a second long file
    assert len(book) >= LONG_DOCUMENT_CHARS and len(other) >= LONG_DOCUMENT_CHARS
    note = "Bu klasördeki metin Nutuk'tur."
    shards = build([note, book, other], tokenizer, tmp_path, val_fraction=0.1)
    val = tokenizer.decode(np.asarray(shards.split("val")).tolist())
    train = tokenizer.decode(np.asarray(shards.split("train")).tolist())
    eot = tokenizer.eot_token
    book_tail, other_tail = "\n\n".join(paragraphs[90:]) + "\n", "\n\n".join(paragraphs[90:]).replace("doc", "kit") + "\n"
    assert book_tail + eot in val and other_tail + eot in val  # each long document's tail, at a paragraph break
    assert "\n\n".join(paragraphs[:90]) + "\n\n" + eot in train and paragraphs[89].replace("doc", "kit") in train
    assert (note in train) != (note in val)  # the short note goes one way, whole
    splits = shards.meta["splits"]
    assert splits["train"]["bytes"] + splits["val"]["bytes"] == sum(len(t.encode()) for t in (note, book, other))
    assert shards.n_documents("val") == 2 + (note in val)


def test_a_long_document_on_one_line_still_gives_a_tenth(tmp_path, tokenizer):
    """A speech stored as a title, a blank line and one long line (9 of the built-in corpus's long speeches):
    its only paragraph break is at the start, so the cut falls at a space near 90 %, not after the title."""
    from lunalm.data.shards import split_lone_document

    body = " ".join(make_documents(1000))
    text = "Nutuk\n\n" + body + "\n"
    head, tail = split_lone_document(text, 0.1)
    assert head + tail == text and head.endswith(" ") and 0.095 < len(tail) / len(text) < 0.105
    assert split_lone_document("tek bir kelime", 0.1) == ("tek bir ", "kelime")  # short: the nearest break
    shards = build([text], tokenizer, tmp_path, val_fraction=0.1)
    assert 0.09 < shards.meta["splits"]["val"]["bytes"] / len(text.encode()) < 0.11


def test_second_build_reuses_cache(tmp_path, tokenizer):
    docs = make_documents(20)
    first = build(docs, tokenizer, tmp_path)
    meta_file = first.directory / "meta.json"
    before = meta_file.stat().st_mtime_ns

    class ExplodingTokenizer:
        content_hash = tokenizer.content_hash

        def encode_batch(self, texts):
            raise AssertionError("the cache should have been reused")

    def no_documents():
        raise AssertionError("documents should not be read")
        yield  # pragma: no cover

    second = build(no_documents(), ExplodingTokenizer(), tmp_path)
    assert second.meta == first.meta and meta_file.stat().st_mtime_ns == before


def test_cache_with_other_tokenizer_hash_is_refused(tmp_path, tokenizer):
    build(make_documents(5), tokenizer, tmp_path)
    with pytest.raises(DataError, match="different tokenizer"):
        build(make_documents(5), train_char(["abc"]), tmp_path)


def test_failed_build_leaves_no_cache(tmp_path, tokenizer):
    def documents():
        yield from make_documents(10)
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        build(documents(), tokenizer, tmp_path, shard_tokens=16)
    cache = tmp_path / "cache"
    assert not (cache / "k1").exists()
    assert list(cache.iterdir()) == []  # staging dir removed as well
    shards = build(make_documents(10), tokenizer, tmp_path)  # a clean rebuild then works
    assert shards.n_documents("train") + shards.n_documents("val") == 10


def test_a_build_killed_without_cleanup_is_removed_by_the_next_one(tmp_path, tokenizer):
    """kill -9 runs no ``finally``: its staging folder stayed in the cache for good (gigabytes for a large
    corpus). The next build of the key removes it; a live build's, another key's and another host's stay."""
    import os
    import socket
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cache, host = tmp_path / "cache", socket.gethostname()
    folders = {}
    for name, key, owner in [("killed", "k1", f"{host} {dead.pid}"), ("live", "k1", f"{host} {os.getpid()}"),
                             ("other-key", "k2", f"{host} {dead.pid}"), ("other-host", "k1", f"elsewhere {dead.pid}")]:
        folders[name] = cache / f".{key}.tmp-{name}"
        folders[name].mkdir(parents=True)
        (folders[name] / "owner").write_text(owner + "\n", encoding="utf-8")
        (folders[name] / "train-00000.bin").write_bytes(b"\0" * 64)
    shards = build(make_documents(10), tokenizer, tmp_path)
    assert shards.n_documents("train") + shards.n_documents("val") == 10
    assert {name for name, folder in folders.items() if folder.exists()} == {"live", "other-key", "other-host"}
    assert not (cache / "k1" / "owner").exists()  # the published cache holds only shards and meta.json


def test_multiple_shards_read_as_one_stream(tmp_path, tokenizer):
    docs = make_documents(40)
    whole = build_shards(docs, tokenizer, tmp_path, "one", val_fraction=0.0, progress=False)
    many = build_shards(docs, tokenizer, tmp_path, "many", val_fraction=0.0, shard_tokens=37,
                        progress=False)
    files = many.meta["splits"]["train"]["shards"]
    assert len(files) > 3 and all(s["tokens"] <= 37 for s in files)
    assert all((many.directory / s["file"]).stat().st_size == 2 * s["tokens"] for s in files)
    flat, view = np.asarray(whole.split("train")), many.split("train")
    assert len(view) == len(flat)
    assert np.array_equal(np.asarray(view), flat)
    for start, stop in [(0, 5), (30, 80), (36, 38), (len(flat) - 3, len(flat))]:
        assert np.array_equal(view[start:stop], flat[start:stop])
    assert view[40] == flat[40] and view[-1] == flat[-1]


def test_uint32_for_large_vocab(tmp_path):
    tok = train_char(["".join(chr(0x20000 + i) for i in range(66_000))])  # > 65536 distinct chars
    last = chr(0x20000 + 65_999)
    shards = build_shards([last * 3, "x"], tok, tmp_path, "big", val_fraction=0.0, progress=False)
    assert np.asarray(shards.split("train")).tolist()[:3] == [tok.vocab_size - 1] * 3
    assert shards.meta["dtype"] == "uint32" and shards.split("train").dtype == np.uint32


def test_long_documents_split_without_changing_ids(tokenizer):
    text = "\n".join(make_documents(300)) + "\n\n  girinti\n\tsekme\n123\nçok ğüzel"
    pieces = split_for_encoding(text, piece_chars=500)
    assert len(pieces) > 5 and "".join(pieces) == text
    ids = [i for piece in pieces for i in tokenizer.encode(piece)]
    assert ids == tokenizer.encode(text)


def test_cache_key_is_short_and_sensitive():
    base = cache_key("corpus", {"nfc": True}, "tok", 0.1, 1337)
    assert len(base) == 16 and base == cache_key("corpus", {"nfc": True}, "tok", 0.1, 1337)
    assert len({base, cache_key("corpus2", {"nfc": True}, "tok", 0.1, 1337),
                cache_key("corpus", {"nfc": False}, "tok", 0.1, 1337),
                cache_key("corpus", {"nfc": True}, "tok2", 0.1, 1337),
                cache_key("corpus", {"nfc": True}, "tok", 0.2, 1337),
                cache_key("corpus", {"nfc": True}, "tok", 0.1, 1)}) == 6


def test_empty_corpus_is_a_data_error(tmp_path, tokenizer):
    with pytest.raises(DataError, match="no non-empty documents"):
        build(["", ""], tokenizer, tmp_path)
    assert list((tmp_path / "cache").iterdir()) == []


def test_bad_arguments_and_corrupt_cache(tmp_path, tokenizer):
    with pytest.raises(DataError, match="val_fraction"):
        build(["a"], tokenizer, tmp_path, val_fraction=1.0)
    shards = build(make_documents(5), tokenizer, tmp_path)
    with pytest.raises(DataError, match="Unknown split 'test'"):
        shards.split("test")
    (shards.directory / "meta.json").write_text("{broken")
    with pytest.raises(DataError, match="meta.json"):
        ShardSet.open(shards.directory)
    meta_path = tmp_path / "x" / "meta.json"
    meta_path.parent.mkdir()
    meta_path.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(DataError, match="format version 99"):
        ShardSet.open(meta_path.parent)
