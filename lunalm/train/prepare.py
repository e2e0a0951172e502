"""Corpus -> tokenizer -> token shards, cached, for a run config (the data half of the pipeline).

Both steps are cached under ``data.cache_dir``: the trained tokenizer by corpus fingerprint + tokenizer
config, the token shards by corpus + cleaning + tokenizer hash + split. A second run on the same corpus
starts training in seconds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lunalm.config import RunConfig, to_dict
from lunalm.corpus import Corpus
from lunalm.corpus.discover import unread_notes
from lunalm.data.shards import ShardSet, build_shards, cache_key
from lunalm.errors import DataError
from lunalm.tokenizer import (TOKENIZER_SAMPLE_BYTES, TOKENIZER_SAMPLE_CHARS, TURKISH_SPLIT_PATTERN, Tokenizer,
                              TextCount, corpus_vocab_size, train_bpe, train_char)


def sample_texts(corpus: Corpus, max_chars: int, max_bytes: int, count: TextCount | None = None):
    """Texts of ~``max_chars`` characters of cleaned documents from a spread of ~``max_bytes`` of the corpus's
    files (``Corpus.sample``), or from its first ~``max_bytes`` where it has too few files for a spread.
    ``count``, when given, counts what was read and whether it was the whole corpus (``count.complete``)."""
    count = count if count is not None else TextCount()
    sampled = corpus.sample(max_bytes)
    for document in sampled.documents():
        yield document.text
        count.add(document)
        if count.chars >= max_chars:
            return
    count.complete = len(sampled.files) == len(corpus.files) and not sampled.read_bytes


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    shards: ShardSet | None
    corpus_name: str
    instructions: object | None = None  # lunalm.finetune.instructions.InstructionData (then no shards)


def prepare_data(config: RunConfig, tokenizer: Tokenizer | None = None, progress: bool = True,
                 log=print) -> PreparedData:
    """Tokenizer (given, loaded, or trained and cached) and token shards (built or reused)."""
    if config.finetune is not None and config.finetune.format != "text":
        return _instruction_data(config, tokenizer, log)
    corpus = Corpus(config.corpus)
    for note in unread_notes(config.corpus.paths, config.corpus.include, config.corpus.exclude):
        log(f"note: {note}")
    cache = Path(config.data.cache_dir)
    if tokenizer is None:
        tokenizer = _tokenizer(config, corpus, cache, log)
    key = cache_key(corpus.fingerprint(), to_dict(config.corpus), tokenizer.content_hash,
                    config.data.val_fraction, config.data.seed)
    if not (cache / "shards" / key / "meta.json").is_file():
        log(f"encoding {corpus.name} into token shards (cached for the next run)")
    shards = build_shards((d.text for d in corpus.documents()), tokenizer, cache / "shards", key,
                          val_fraction=config.data.val_fraction, seed=config.data.seed, progress=progress)
    if skipped := corpus.report.skipped_note():  # read just now (cached shards read nothing)
        log(f"note: {skipped}")
    if shards.n_tokens("train") < config.data.context_length + 1:
        raise DataError(f"{corpus.name}: only {shards.n_tokens('train'):,} training tokens, fewer than one "
                        f"window of data.context_length + 1 = {config.data.context_length + 1}; use a "
                        "smaller --context or add text")
    return PreparedData(tokenizer, shards, corpus.name)


def _instruction_data(config: RunConfig, tokenizer: Tokenizer | None, log) -> PreparedData:
    """Instruction JSONL rendered through the chat template (stored with the tokenizer), prompt masked."""
    from lunalm.finetune.instructions import DEFAULT_TEMPLATE, build_instruction_data

    tokenizer = tokenizer or Tokenizer.load(config.tokenizer.path)
    tokenizer.chat_template = tokenizer.chat_template or DEFAULT_TEMPLATE
    data = build_instruction_data(config.corpus.paths, config.finetune.format, tokenizer,
                                  config.data.context_length, config.data.val_fraction, config.data.seed,
                                  dedup=config.corpus.dedup)
    kept = len(data.train[0]) + len(data.val[0])
    log(f"{config.finetune.format} examples: {data.read:,} read, {kept:,} kept ({len(data.train[0]):,} to train on, "
        f"{len(data.val[0]):,} held out); the loss is on the answers only, the prompts masked")
    if data.truncated:
        log(f"{data.truncated} example(s) longer than context_length {config.data.context_length} were truncated")
    if data.empty:
        log(f"{data.empty} example(s) with an empty prompt or answer were left out")
    if data.duplicates:
        log(f"{data.duplicates} duplicate example(s) were left out (corpus.dedup)")
    if data.no_room:
        log(f"{data.no_room} example(s) were left out: the prompt alone fills context_length "
            f"{config.data.context_length} (a larger --context keeps them)")
    if data.last_only:
        log(f"{data.last_only} conversation(s) train their last answer only: the chat template moves text between "
            "turns (a system message into the last user turn), so earlier answers cannot be masked apart")
    return PreparedData(tokenizer, None, ", ".join(config.corpus.paths), instructions=data)


def _tokenizer(config: RunConfig, corpus: Corpus, cache: Path, log) -> Tokenizer:
    settings = config.tokenizer
    if settings.kind == "pretrained":
        return Tokenizer.load(settings.path)
    # the split rule is part of the key: a tokenizer cached under an older rule is not reused
    blob = json.dumps({"corpus": corpus.fingerprint(), "tokenizer": to_dict(settings),
                       "split": TURKISH_SPLIT_PATTERN, "vocab": "cleaned characters"}, sort_keys=True)
    directory = cache / "tokenizers" / hashlib.sha256(blob.encode()).hexdigest()[:16]
    if (directory / "tokenizer.json").is_file():
        return Tokenizer.load(directory / "tokenizer.json")
    if settings.kind == "char":  # every character must be seen: a sample would make rare ones unknown
        log(f"training a character-level tokenizer on {corpus.name}")
        trained = train_char(d.text for d in Corpus(config.corpus).documents())
    else:
        count = TextCount()
        texts = list(sample_texts(corpus, TOKENIZER_SAMPLE_CHARS, TOKENIZER_SAMPLE_BYTES, count))
        vocab = settings.vocab_size or corpus_vocab_size(corpus.files, count)
        log(f"training a BPE tokenizer (vocab {vocab:,}) on {corpus.name}")
        trained = train_bpe(texts, vocab_size=vocab, min_frequency=settings.min_frequency)
    trained.save(directory)
    return trained
