"""Token cache: documents -> token ids (each followed by end-of-text) -> flat binary shards on disk.

Layout of ``cache_dir/<key>/``::

    meta.json            format version, tokenizer hash, dtype, per split: tokens, bytes, documents, shards
    train-00000.bin ...  raw little-endian uint16 (vocab <= 65536) or uint32 token ids, memmap-readable
    val-00000.bin ...

Why this shape: a training run reads windows at random offsets, so the tokens must be one flat array
that ``numpy.memmap`` can slice without loading; encoding is the slow part, so it is cached under a key
derived from everything that changes the ids (corpus, cleaning, tokenizer, split). The split is by
*document* (a window never straddles train and validation text) and decided by hashing the document's
content with the seed, so it streams, does not depend on document order, and sends duplicated documents
to the same split (no leakage through duplicates); a long document (``LONG_DOCUMENT_CHARS``) is cut at a
paragraph break, its head to training and its last ``val_fraction`` to validation. A build writes into a
temporary directory renamed into place at the end, so a crashed or killed build never leaves a
half-written cache under the key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from lunalm.errors import DataError

FORMAT_VERSION = 4  # 2: a corpus of one document has its tail as validation text; 3: so has every long one;
# 4: the tail is a tenth even where the only paragraph break is after a title (split_lone_document)
# A document this long (a book, a whole file of text; ~25 pages) gives its last val_fraction to validation
# and the rest to training, instead of going to one split whole: a corpus of a few long files (a book and
# its README, two files of two kinds) would otherwise validate on one whole file of one kind, or on the
# README alone. Seen on real folders: Nutuk as one 1.5 MB file beside a 480-byte note validated on the note
# and early stopping ended the run at step 200 of 1,146; Fuzuli's poems beside Azerbaijani Wikipedia
# validated on Wikipedia alone and stopped at step 150 of 644 (3.58 held-out bits/byte against PPMd's 2.27).
LONG_DOCUMENT_CHARS = 50_000
SPLITS = ("train", "val")
CHUNK_DOCUMENTS = 1024  # documents per encode_batch call: enough to keep every core busy
CHUNK_CHARS = 4 * 2**20  # ... at most ~4 M characters: small enough that reading the next overlaps encoding
PIECE_CHARS = 2**20  # huge documents are cut into ~1 M-char pieces so they encode in parallel too
# A newline followed by a letter is always a pre-token boundary for lunalm's BPE and char tokenizers
# (no pre-token crosses it and NFC does not compose across it), so cutting there leaves ids unchanged.
_SAFE_CUT = re.compile(r"\n(?=[^\W\d_])")


def cache_key(corpus_fingerprint: str, cleaning: dict, tokenizer_hash: str, val_fraction: float,
              seed: int) -> str:
    """Short (16 hex) sha256 of everything that changes the cached ids; format version included."""
    parts = {"format": FORMAT_VERSION, "corpus": corpus_fingerprint, "cleaning": cleaning,
             "tokenizer": tokenizer_hash, "val_fraction": float(val_fraction), "seed": int(seed)}
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def token_dtype(max_token_id: int) -> np.dtype:
    """uint16 halves disk and page-cache use whenever every id fits (vocab <= 65536)."""
    return np.dtype(np.uint16) if max_token_id < 2**16 else np.dtype(np.uint32)


class ConcatTokens:
    """Read-only view over several shard memmaps that slices like one flat 1-D array."""

    def __init__(self, parts: list[np.ndarray]):
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])  # (n_parts + 1,)
        self.dtype = parts[0].dtype

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            assert step == 1, "ConcatTokens supports contiguous slices only"
            return self._read(start, max(start, stop))
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        return self._read(position, position + 1)[0]

    def __array__(self, dtype=None, copy=None):
        whole = np.concatenate(self.parts)
        return whole if dtype is None else whole.astype(dtype)

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) gathered from the shards they span."""
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        pieces, position = [], start
        for i in range(max(first, 0), len(self.parts)):
            if position >= stop:
                break
            local = position - self.offsets[i]
            take = min(stop, self.offsets[i + 1]) - position
            pieces.append(self.parts[i][local:local + take])
            position += take
        return np.concatenate(pieces) if pieces else np.empty(0, self.dtype)


class ShardSet:
    """A finished token cache: ``meta`` plus memmap views of each split."""

    def __init__(self, directory: Path, meta: dict):
        self.directory = Path(directory)
        self.meta = meta

    @classmethod
    def open(cls, directory: str | Path) -> "ShardSet":
        directory = Path(directory)
        try:
            meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DataError(f"The token cache at {directory} has no readable meta.json ({error}); delete "
                            "that directory so it is rebuilt.") from error
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(f"The token cache at {directory} has format version "
                            f"{meta.get('format_version')}, expected {FORMAT_VERSION}; delete it so it "
                            "is rebuilt.")
        return cls(directory, meta)

    def split(self, name: str):
        """Tokens of a split: a memmap (1 shard), a ConcatTokens view (several), or empty array."""
        shards = self._split_meta(name)["shards"]
        dtype = np.dtype(self.meta["dtype"])
        parts = [np.memmap(self.directory / s["file"], dtype=dtype, mode="r", shape=(s["tokens"],))
                 for s in shards]
        if not parts:
            return np.empty(0, dtype)
        return parts[0] if len(parts) == 1 else ConcatTokens(parts)

    def n_tokens(self, name: str) -> int:
        return int(self._split_meta(name)["tokens"])

    def n_documents(self, name: str) -> int:
        return int(self._split_meta(name)["documents"])

    def bytes_per_token(self, name: str) -> float:
        """UTF-8 source bytes per token (eot included): bits/byte = loss_nats / ln 2 / this."""
        split = self._split_meta(name)
        if split["tokens"] == 0:
            raise DataError(f"The {name!r} split of the token cache at {self.directory} is empty; use "
                            "more documents or a larger val_fraction.")
        return split["bytes"] / split["tokens"]

    def _split_meta(self, name: str) -> dict:
        if name not in SPLITS:
            raise DataError(f"Unknown split {name!r}; use one of {', '.join(SPLITS)}.")
        return self.meta["splits"][name]

    def __repr__(self) -> str:
        return (f"ShardSet({self.directory}, train={self.n_tokens('train')} tokens, "
                f"val={self.n_tokens('val')} tokens)")


class _SplitWriter:
    """Appends token arrays to ``<split>-NNNNN.bin`` files, starting a new one every shard_tokens."""

    def __init__(self, directory: Path, name: str, dtype: np.dtype, shard_tokens: int):
        self.directory, self.name, self.dtype, self.shard_tokens = directory, name, dtype, shard_tokens
        self.shards: list[dict] = []  # [{"file": "train-00000.bin", "tokens": n}, ...]
        self.tokens = self.bytes = self.documents = 0
        self._file = None

    def write(self, tokens: np.ndarray, n_bytes: int) -> None:
        self.documents += 1
        self.bytes += n_bytes
        offset = 0
        while offset < len(tokens):
            if self._file is None or self.shards[-1]["tokens"] == self.shard_tokens:
                self._next_shard()
            take = min(len(tokens) - offset, self.shard_tokens - self.shards[-1]["tokens"])
            self._file.write(tokens[offset:offset + take].astype(self.dtype, copy=False).tobytes())
            self.shards[-1]["tokens"] += take
            self.tokens += take
            offset += take

    def _next_shard(self) -> None:
        self.close()
        name = f"{self.name}-{len(self.shards):05d}.bin"
        self._file = open(self.directory / name, "wb", buffering=2**20)
        self.shards.append({"file": name, "tokens": 0})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def summary(self) -> dict:
        return {"tokens": self.tokens, "bytes": self.bytes, "documents": self.documents,
                "shards": self.shards}


class _DocumentSplitter:
    """Assigns each document to train/val by a seeded content hash, streaming.

    To guarantee a non-empty split when there are >= 2 documents, each split holds back its most
    marginal document (the one whose hash is nearest the threshold) until the other split has one too;
    if it never does, the held document moves over at the end. Written order = input order, except that
    a held document is written when the hold ends.

    A corpus of exactly one document (one text file, the usual first fine-tune) cannot be split by
    document, so its text is cut at a paragraph break near ``1 - val_fraction`` of its length: the head
    trains, the tail (re-encoded by ``encode``) validates. Without this such a run would never evaluate.
    """

    def __init__(self, writers: dict[str, _SplitWriter], val_fraction: float, seed: int,
                 encode: Callable[[str], np.ndarray] | None = None):
        self.writers, self.val_fraction, self.encode = writers, val_fraction, encode
        self.salt = str(seed).encode("utf-8") + b"\0"
        self.held: dict[str, tuple] = {}  # split -> (margin, tokens, n_bytes)
        self.assigned = {name: 0 for name in SPLITS}
        self.lone_text: str | None = None  # the text of the first document while it is the only one

    def add(self, text: str, tokens: np.ndarray, n_bytes: int, split: str | None = None) -> None:
        """``split``: the head ("train") or tail ("val") of a long document, placed where it says."""
        if split is not None:
            self.lone_text = None
            self.assigned[split] += 1
            if all(self.assigned.values()):
                self._flush()
            self.writers[split].write(tokens, n_bytes)
            return
        self.lone_text = text if not any(self.assigned.values()) else None
        digest = hashlib.blake2b(self.salt + text.encode("utf-8"), digest_size=8).digest()
        score = int.from_bytes(digest, "big") / 2**64  # uniform in [0, 1)
        name = "val" if score < self.val_fraction else "train"
        margin = abs(score - self.val_fraction)  # smaller = closer to flipping split
        self.assigned[name] += 1
        if self.val_fraction == 0 or all(self.assigned.values()):
            self._flush()  # both splits are non-empty: nothing needs holding any more
            self.writers[name].write(tokens, n_bytes)
            return
        held = self.held.get(name)
        if held is None or margin < held[0]:
            self.held[name] = (margin, tokens, n_bytes)
            if held is None:
                return
            tokens, n_bytes = held[1], held[2]
        self.writers[name].write(tokens, n_bytes)

    def finish(self) -> None:
        if self.lone_text is not None and self.held:
            self._finish_lone(*next(iter(self.held.values()))[1:])
            return
        for name, other in (("train", "val"), ("val", "train")):
            wanted = other == "train" or self.val_fraction > 0
            if self.assigned[other] == 0 and self.assigned[name] >= 2 and wanted:
                self.held[other] = self.held.pop(name)
                self.assigned[other], self.assigned[name] = 1, self.assigned[name] - 1
        self._flush()

    def _finish_lone(self, tokens: np.ndarray, n_bytes: int) -> None:
        """The only document: head to train, tail to val; whole to train when it cannot be cut."""
        self.held.clear()
        head, tail = split_lone_document(self.lone_text, self.val_fraction) if self.encode else ("", "")
        if not tail:
            self.writers["train"].write(tokens, n_bytes)
            return
        for name, text in (("train", head), ("val", tail)):
            self.writers[name].write(self.encode(text), len(text.encode("utf-8")))

    def _flush(self) -> None:
        for name, (_, tokens, n_bytes) in self.held.items():
            self.writers[name].write(tokens, n_bytes)
        self.held.clear()


def split_lone_document(text: str, val_fraction: float) -> tuple[str, str]:
    """(head, tail) of ``text`` cut after a paragraph break near ``1 - val_fraction`` of its length; a line
    break, else a space, where no paragraph break lies within half a ``val_fraction`` of that point (a
    speech stored as one line after its title would otherwise give 98 % of itself to validation); the
    nearest break at any distance where none is that near (short texts); tail "" when the text has no
    break with text on both sides."""
    target = round(len(text) * (1 - val_fraction))
    tolerance = len(text) * val_fraction / 2
    for near in (True, False):
        for separator in ("\n\n", "\n", " "):
            before = text.rfind(separator, 0, target)
            after = text.find(separator, target)
            candidates = [i + len(separator) for i in (before, after) if i > 0]
            cuts = [cut for cut in candidates if text[:cut].strip() and text[cut:].strip()
                    and (not near or abs(cut - target) <= tolerance)]
            if cuts:
                cut = min(cuts, key=lambda c: abs(c - target))
                return text[:cut], text[cut:]
    return text, ""


def build_shards(documents: Iterable[str], tokenizer, cache_dir: str | Path, key: str,
                 val_fraction: float = 0.1, seed: int = 1337, shard_tokens: int = 2**26,
                 progress: bool = True) -> ShardSet:
    """Encode ``documents`` into the cache at ``cache_dir/key`` (or reuse it if already complete)."""
    if not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}; e.g. use 0.1.")
    if shard_tokens < 1:
        raise DataError(f"shard_tokens must be positive, got {shard_tokens}.")
    final = Path(cache_dir) / key
    if (final / "meta.json").is_file():
        return _reuse(final, tokenizer)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(final.parent, key)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=final.parent))
    (staging / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n", encoding="utf-8")
    try:
        meta = _encode_into(staging, documents, tokenizer, val_fraction, seed, shard_tokens, progress)
        meta["key"] = key
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (staging / OWNER).unlink()
        _publish(staging, final)
    except BaseException:  # includes KeyboardInterrupt: never leave the staging dir behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ShardSet.open(final)


OWNER = "owner"  # in a staging folder: "<host> <pid>" of the process that builds it
ABANDONED_AFTER_S = 24 * 3600  # a staging folder of another host, untouched this long, is abandoned


def remove_abandoned(cache_dir: Path, key: str) -> None:
    """Delete the staging folders of ``key`` whose build was killed (``kill -9``, a power cut: no ``finally``
    ran): their process is gone from this host, or, another host's, they are a day old. A large corpus left
    gigabytes of half-written shards in the cache after each killed build."""
    host = socket.gethostname()
    for staging in cache_dir.glob(f".{key}.tmp-*"):
        try:
            owner_host, pid = (staging / OWNER).read_text(encoding="utf-8").split()
            gone = not _alive(int(pid)) if owner_host == host else \
                time.time() - (staging / OWNER).stat().st_mtime > ABANDONED_AFTER_S
        except (OSError, ValueError):  # no owner file: written before it existed, or being created right now
            gone = time.time() - staging.stat().st_mtime > ABANDONED_AFTER_S if staging.exists() else False
        if gone:
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or a platform that cannot tell
        return True
    return True


def _reuse(final: Path, tokenizer) -> ShardSet:
    shards = ShardSet.open(final)
    if shards.meta["tokenizer_hash"] != tokenizer.content_hash:
        raise DataError(f"The token cache at {final} was built with a different tokenizer; include the "
                        "tokenizer hash in the cache key or delete that directory.")
    return shards


def _publish(staging: Path, final: Path) -> None:
    """Atomic rename; if a concurrent build won the race, keep theirs and drop ours."""
    if final.exists() and not (final / "meta.json").is_file():
        shutil.rmtree(final)  # an incomplete directory someone else left: never a valid cache
    try:
        os.rename(staging, final)
    except OSError:
        if not (final / "meta.json").is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _encode_into(directory: Path, documents: Iterable[str], tokenizer, val_fraction: float, seed: int,
                 shard_tokens: int, progress: bool) -> dict:
    """Stream documents through the tokenizer into split writers; returns meta.json's content."""
    from tqdm import tqdm

    max_id = max(tokenizer.inner.get_vocab(with_added_tokens=True).values())
    dtype = token_dtype(max_id)
    writers = {name: _SplitWriter(directory, name, dtype, shard_tokens) for name in SPLITS}
    eot = np.array([tokenizer.eot_id], dtype=np.int64)
    splittable = getattr(tokenizer, "kind", "pretrained") in ("bpe", "char")

    def encode(text: str) -> np.ndarray:
        return np.concatenate([_encode_chunk(tokenizer, [text], splittable)[0], eot])

    splitter = _DocumentSplitter(writers, val_fraction, seed, encode)
    with tqdm(desc="tokenizing", unit="B", unit_scale=True, disable=not progress) as bar:
        for chunk in _prefetched(_chunks(_long_documents_cut(documents, val_fraction))):
            texts = [text for text, _ in chunk]
            for (text, split), ids in zip(chunk, _encode_chunk(tokenizer, texts, splittable)):
                n_bytes = len(text.encode("utf-8"))
                splitter.add(text, np.concatenate([ids, eot]), n_bytes, split)
                bar.update(n_bytes)
    splitter.finish()
    for writer in writers.values():
        writer.close()
    if not any(writer.documents for writer in writers.values()):
        raise DataError("The corpus yielded no non-empty documents to tokenize; check the input paths "
                        "(and the text field for .jsonl files).")
    return {"format_version": FORMAT_VERSION, "tokenizer_hash": tokenizer.content_hash,
            "tokenizer_kind": getattr(tokenizer, "kind", "pretrained"), "vocab_size": tokenizer.vocab_size,
            "eot_id": tokenizer.eot_id, "dtype": dtype.name, "val_fraction": val_fraction, "seed": seed,
            "splits": {name: writer.summary() for name, writer in writers.items()}}


def _long_documents_cut(documents: Iterable[str], val_fraction: float) -> Iterator[tuple[str, str | None]]:
    """(text, split): a long document as its head ("train") and tail ("val"), any other whole (None: the
    splitter's hash decides)."""
    for text in documents:
        if val_fraction > 0 and len(text) >= LONG_DOCUMENT_CHARS:
            head, tail = split_lone_document(text, val_fraction)
            if tail:
                yield head, "train"
                yield tail, "val"
                continue
        yield text, None


def _chunks(documents: Iterable[tuple[str, str | None]]) -> Iterator[list[tuple[str, str | None]]]:
    """Non-empty (text, split) documents in lists bounded by count and characters (memory stays bounded)."""
    chunk: list[tuple[str, str | None]] = []
    chars = 0
    for text, split in documents:
        if not text:
            continue  # an empty document would contribute only an eot token
        chunk.append((text, split))
        chars += len(text)
        if len(chunk) >= CHUNK_DOCUMENTS or chars >= CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _prefetched(chunks: Iterator[list[str]]) -> Iterator[list[str]]:
    """Read and clean the next chunk in a thread while this one is encoded.

    ``encode_batch`` runs in Rust with the GIL released, so the Python work of reading, repairing and
    filtering text overlaps with encoding instead of adding to it. One chunk ahead at most: memory stays
    bounded. An error while reading is raised here, in the caller's thread.
    """
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=1)
    done = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                box.put(chunk)
            box.put(done)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises it
            box.put(error)

    threading.Thread(target=produce, name="lunalm-read-ahead", daemon=True).start()
    while True:
        item = box.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _encode_chunk(tokenizer, chunk: list[str], splittable: bool) -> list[np.ndarray]:
    """Token ids per document (int64), encoding all pieces of all documents in one parallel call."""
    pieces, owners = [], []
    for index, text in enumerate(chunk):
        parts = split_for_encoding(text) if splittable else [text]
        pieces.extend(parts)
        owners.extend([index] * len(parts))
    encoded = tokenizer.encode_batch(pieces)
    per_document: list[list[np.ndarray]] = [[] for _ in chunk]
    for owner, ids in zip(owners, encoded):
        per_document[owner].append(np.asarray(ids, dtype=np.int64))
    return [np.concatenate(parts) if parts else np.empty(0, np.int64) for parts in per_document]


def split_for_encoding(text: str, piece_chars: int | None = None) -> list[str]:
    """Cut a long document after a newline-before-letter roughly every ``piece_chars`` characters.

    Safe only for lunalm's own BPE/char tokenizers (see ``_SAFE_CUT``); concatenating the pieces'
    ids equals encoding the whole text.
    """
    piece_chars = piece_chars or PIECE_CHARS
    if len(text) <= piece_chars:
        return [text]
    pieces, start = [], 0
    while len(text) - start > piece_chars:
        cut = _SAFE_CUT.search(text, start + piece_chars)
        if cut is None:
            break
        pieces.append(text[start:cut.end()])
        start = cut.end()
    pieces.append(text[start:])
    return pieces
