"""Tokenizers: byte-level BPE trained on the corpus, character-level, or a local pretrained one.

Everything is a Hugging Face ``tokenizers.Tokenizer`` underneath, so a saved ``tokenizer.json`` loads in
``transformers`` unchanged, and encoding runs in Rust (``encode_batch`` is parallel). ``Tokenizer`` is a
thin wrapper that adds what the rest of lunalm needs: the end-of-text / padding ids, a content hash that
keys the token cache, and typed errors.

Why a custom BPE pre-tokeniser: GPT-2's regex splits English contractions (``'s 't 're 've 'm 'll 'd``),
which cuts Turkish suffixes after an apostrophe (``Ankara'da`` -> ``Ankara`` ``'d`` ``a``). Turkish writes
case suffixes on proper nouns after an apostrophe (' or ’), so the apostrophe stands alone between stem and
suffix: ``Ankara'da`` -> `` Ankara`` ``'`` ``da``. No merge can then join a stem to the apostrophe, and the
suffix is learnt as the same token wherever it follows a name. Against plain byte-level BPE of the same
vocabulary this keeps the suffix whole more often, with more characters per token and fewer held-out bits
per byte at every vocabulary from 512 to 50k (``bench/bench_apostrophe.py``). Keeping ``word'suffix`` as
one pre-token instead let merges swallow the apostrophe into the stem (``Türkiye'`` + ``nin``) and split
suffixes (``'n`` + ``in``). Digits are split into groups of at most three so numbers do not eat the
vocabulary. The byte-level
step after the split makes every string encodable and ``decode(encode(x)) == x`` for NFC text.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Iterator

from lunalm.errors import TokenizerError

EOT_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
UNK_TOKEN = "<|unk|>"  # char tokenizer only: characters never seen in training
SPECIAL_TOKENS = [EOT_TOKEN, PAD_TOKEN]  # ids 0 and 1 in every tokenizer we train

# Alternatives, first match wins (Oniguruma syntax, as used by tokenizers' Split):
#   1. an optional space + letters: " Türkiye", "nin" (the suffix after an apostrophe)
#   2. an apostrophe followed by a letter, alone: "'" of "Türkiye'nin" (a quote after a space is rule 4)
#   3. digits in groups of 1-3
#   4. an optional space + a punctuation run, swallowing trailing newlines
#   5. whitespace ending in newlines; 6. whitespace not followed by a word (so " word" keeps its space)
#   7. any other whitespace
TURKISH_SPLIT_PATTERN = (
    r"""[ ]?\p{L}+"""
    r"""|['’](?=\p{L})"""
    r"""|\p{N}{1,3}"""
    r"""|[ ]?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+"""
    r"""|\s+(?!\S)"""
    r"""|\s+"""
)
CHAR_SPLIT_PATTERN = r"[\s\S]"  # every code point on its own (newlines included)

# Candidate names when a pretrained tokenizer does not declare its tokens in tokenizer_config.json.
_EOT_CANDIDATES = [EOT_TOKEN, "</s>", "<eos>", "<|end_of_text|>", "<|im_end|>", "<|eot_id|>"]
_PAD_CANDIDATES = [PAD_TOKEN, "<pad>", "[PAD]", "<|finetune_right_pad_id|>"]


class Tokenizer:
    """A ``tokenizers.Tokenizer`` plus the end-of-text / pad ids and a content hash."""

    def __init__(self, inner, kind: str, eot_token: str = EOT_TOKEN, pad_token: str | None = None):
        self.inner = inner
        self.kind = kind  # "bpe" | "char" | "pretrained"
        self.eot_token = eot_token
        self.pad_token = pad_token if pad_token is not None else eot_token
        self.chat_template: str | None = None  # Jinja chat template (instruction fine-tunes), saved if set
        self.bos_token: str | None = None  # a pretrained base's begin-of-text token (chat templates write it)
        for name, token in (("end-of-text", self.eot_token), ("padding", self.pad_token)):
            if inner.token_to_id(token) is None:
                raise TokenizerError(f"The tokenizer has no {name} token {token!r}; add it as a special "
                                     "token or train a new tokenizer with lunalm.")

    # --- encoding -------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS/EOS: the data pipeline adds end-of-text itself."""
        return self.inner.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Parallel (Rust, all cores) encode; skips computing offsets when tokenizers can."""
        fast = getattr(self.inner, "encode_batch_fast", self.inner.encode_batch)
        return [encoding.ids for encoding in fast(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; special tokens are kept by default so nothing is silently dropped."""
        return self.inner.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    # --- properties -----------------------------------------------------------------------------
    @property
    def eot_id(self) -> int:
        return self.inner.token_to_id(self.eot_token)

    @property
    def pad_id(self) -> int:
        return self.inner.token_to_id(self.pad_token)

    @property
    def vocab_size(self) -> int:
        """Rows the embedding needs: model vocabulary plus added special tokens."""
        return self.inner.get_vocab_size(with_added_tokens=True)

    @property
    def content_hash(self) -> str:
        """sha256 of the canonical (sorted-key, compact) tokenizer.json: equal tokenizers, equal hash."""
        return hashlib.sha256(_canonical_json(self.inner).encode("utf-8")).hexdigest()

    # --- persistence ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write tokenizer.json plus the two small files ``AutoTokenizer.from_pretrained`` reads."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.inner.save(str(directory / "tokenizer.json"))
        special = {"eos_token": self.eot_token, "pad_token": self.pad_token}
        if self.inner.token_to_id(UNK_TOKEN) is not None:
            special["unk_token"] = UNK_TOKEN
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
                  "model_max_length": 1_000_000_000, **special}
        if self.chat_template is not None:
            config["chat_template"] = self.chat_template
        if self.bos_token is not None:
            config["bos_token"] = special["bos_token"] = self.bos_token
        _write_json(directory / "tokenizer_config.json", config)
        _write_json(directory / "special_tokens_map.json", special)
        return directory / "tokenizer.json"

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        """Load a ``tokenizer.json`` file or a directory (lunalm save or HF model dir) holding one, or the
        tokenizer of a Hub model id through the Hugging Face cache (``lunalm.hub``)."""
        from lunalm.hub import TOKENIZER_FILES, looks_like_hub_id, snapshot

        path = Path(path)
        if not path.exists() and looks_like_hub_id(str(path)):
            path = snapshot(str(path), flag="--tokenizer-path", error=TokenizerError, patterns=TOKENIZER_FILES)
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise TokenizerError(f"No tokenizer found at {file}; pass a tokenizer.json file or a Hugging "
                                 "Face model directory that contains one.")
        from tokenizers import Tokenizer as HFTokenizer

        try:
            inner = HFTokenizer.from_file(str(file))
        except Exception as error:  # tokenizers raises a plain Exception for any parse failure
            raise TokenizerError(f"{file} is not a valid tokenizer.json ({error}); re-save it with "
                                 "tokenizers/transformers or train a new tokenizer.") from error
        kind = _detect_kind(inner)
        declared = _declared_special_tokens(file.parent)
        eot = _pick_token(inner, [declared.get("eos_token")] + _EOT_CANDIDATES)
        if eot is None:
            raise TokenizerError(f"The tokenizer at {file} has no end-of-text token (looked for "
                                 f"{', '.join(_EOT_CANDIDATES)}); add one as a special token.")
        pad = _pick_token(inner, [declared.get("pad_token")] + _PAD_CANDIDATES)
        tokenizer = cls(inner, kind, eot_token=eot, pad_token=pad)
        tokenizer.chat_template = declared.get("chat_template")
        bos = declared.get("bos_token")
        tokenizer.bos_token = bos if bos and inner.token_to_id(bos) is not None else None
        return tokenizer

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size}, eot_id={self.eot_id})"


# A BPE tokenizer for a run learns its merges from at most this many characters: a spread of the files of
# a larger corpus (``Corpus.sample``), else its first documents (at most TOKENIZER_SAMPLE_BYTES of a few large
# files). Far more than a 32k vocabulary needs to count its merges well, and a 300 MB folder no longer goes
# through the reader twice before training.
TOKENIZER_SAMPLE_CHARS = 40_000_000
TOKENIZER_SAMPLE_BYTES = 48_000_000  # of files to read for it (~1.2 bytes a character of Turkish)

# --- builders ------------------------------------------------------------------------------------
def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2,
              progress: bool = False) -> Tokenizer:
    """Byte-level BPE with the Turkish-aware split, trained by the Rust trainer (streamed batches)."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    smallest = 256 + len(SPECIAL_TOKENS)  # every byte must be a token so any text encodes
    if vocab_size < smallest:
        raise TokenizerError(f"vocab_size {vocab_size} is too small for byte-level BPE: it needs at least "
                             f"{smallest} (256 bytes + special tokens); raise vocab_size or use a char "
                             "tokenizer.")
    inner = HFTokenizer(models.BPE())
    _set_normalizer(inner)
    inner.pre_tokenizer = bpe_pre_tokenizer()
    inner.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=progress)
    inner.train_from_iterator(_batched(texts, 1000), trainer=trainer)
    return Tokenizer(inner, "bpe", pad_token=PAD_TOKEN)


def bpe_pre_tokenizer():
    """Turkish-aware split, then byte-level mapping (no prefix space, no GPT-2 regex of its own)."""
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(TURKISH_SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def train_char(texts: Iterable[str]) -> Tokenizer:
    """Character-level: each distinct (NFC) character seen becomes one token; unseen ones map to unk.

    Built as a WordLevel model over a one-code-point-per-piece split with a ``Fuse`` decoder (which
    joins pieces with no separator), so it is a real ``tokenizers.Tokenizer`` that round-trips exactly.
    """
    import unicodedata

    from tokenizers import Regex
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    seen: set[str] = set()
    for text in texts:
        seen.update(unicodedata.normalize("NFC", text))
    if not seen:
        raise TokenizerError("Cannot train a char tokenizer on an empty corpus; give it some text.")
    specials = SPECIAL_TOKENS + [UNK_TOKEN]
    vocab = {token: i for i, token in enumerate(specials + sorted(seen))}
    inner = HFTokenizer(models.WordLevel(vocab, unk_token=UNK_TOKEN))
    _set_normalizer(inner)
    inner.pre_tokenizer = pre_tokenizers.Split(Regex(CHAR_SPLIT_PATTERN), behavior="isolated")
    inner.decoder = decoders.Fuse()
    inner.add_special_tokens(specials)
    return Tokenizer(inner, "char", pad_token=PAD_TOKEN)


BUILTIN_CHARS = 2_276_672  # the built-in corpus, for the automatic vocabulary size


def corpus_vocab_size(files, count: TextCount) -> int:
    """The BPE vocabulary ``luna train`` builds for these corpus files (the built-in corpus when none):
    ``default_vocab_size`` of their characters of cleaned text, counted (or estimated) by ``count``."""
    if not files:
        return default_vocab_size(BUILTIN_CHARS)
    return default_vocab_size(count.corpus_chars(sum(file.stat().st_size for file in files), count.complete))


class TextCount:
    """Characters of cleaned text (what the model trains on: markup and boilerplate filtered out) among the
    documents of a sample, and the corpus's estimated from them: the count the vocabulary size follows, the
    same in `luna analyze`, `luna plan` and `luna train` (a 3 MB pandoc-converted blog is 1.9 M characters of
    prose; its file sizes would have asked for 9,088 tokens where the plan chose 6,464)."""

    def __init__(self):
        self.chars = self.raw_bytes = 0
        self.complete = False  # set by the reader once it has seen every document

    def add(self, document) -> None:
        self.chars += len(document.text)
        self.raw_bytes += len(document.original.encode("utf-8", "surrogatepass"))

    def corpus_chars(self, corpus_bytes: int, complete: bool) -> int:
        """Every document was seen (``complete``): their count; else scaled by the corpus's size in bytes."""
        return self.chars if complete else round(self.chars * corpus_bytes / max(1, self.raw_bytes))


# (corpus characters, vocabulary size) anchors; log-log interpolation between them.
_VOCAB_ANCHORS = [(1e5, 512), (1e6, 2048), (4e6, 8192), (5e7, 16384), (3e8, 32768)]


def default_vocab_size(n_chars: int) -> int:
    """A BPE vocabulary size suited to a corpus of ``n_chars`` characters (multiple of 64, <= 32k).

    Why it scales with the corpus: a merge is only worth a vocabulary row if the model sees that token
    often enough to learn its embedding. On a 1 MB corpus a 32k vocabulary is mostly tokens seen a handful
    of times, and its embedding matrix would dwarf a small model; on hundreds of MB, larger vocabularies
    compress text better (shorter sequences, more context per window) and the rows are well trained.
    Anchors: <=100 KB -> 512, 1 MB -> 2k, 4 MB -> 8k, 50 MB -> 16k, >=300 MB -> 32k (cap). Rounded to a
    multiple of 64 so embedding and output matmuls map onto tensor cores without padding.
    """
    import math

    if n_chars <= _VOCAB_ANCHORS[0][0]:
        return _VOCAB_ANCHORS[0][1]
    for (x0, v0), (x1, v1) in zip(_VOCAB_ANCHORS, _VOCAB_ANCHORS[1:]):
        if n_chars <= x1:
            t = (math.log(n_chars) - math.log(x0)) / (math.log(x1) - math.log(x0))
            size = math.exp(math.log(v0) + t * (math.log(v1) - math.log(v0)))
            return max(64, int(round(size / 64)) * 64)
    return _VOCAB_ANCHORS[-1][1]


# --- helpers -------------------------------------------------------------------------------------
def _set_normalizer(inner) -> None:
    """NFC so that precomposed and decomposed Turkish letters (ş vs s + cedilla) share tokens."""
    from tokenizers import normalizers

    inner.normalizer = normalizers.NFC()


def _batched(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of ``size`` texts: the Rust trainer consumes batches far faster than single strings."""
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _canonical_json(inner) -> str:
    return json.dumps(json.loads(inner.to_str()), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def _detect_kind(inner) -> str:
    """'bpe' / 'char' for tokenizers lunalm trained (recognised by their split pattern), else pretrained."""
    spec = json.loads(inner.to_str())
    model_type = (spec.get("model") or {}).get("type")
    pre_tokenizer = json.dumps(spec.get("pre_tokenizer"), ensure_ascii=False)
    if model_type == "BPE" and json.dumps(TURKISH_SPLIT_PATTERN, ensure_ascii=False) in pre_tokenizer:
        return "bpe"
    if model_type == "WordLevel" and json.dumps(CHAR_SPLIT_PATTERN) in pre_tokenizer:
        return "char"
    return "pretrained"


def _declared_special_tokens(directory: Path) -> dict[str, str]:
    """eos/pad token strings and the chat template declared next to tokenizer.json: in a HF
    ``tokenizer_config.json``, the template there (a string, or the "default" of a list of named ones) or
    in ``chat_template.jinja`` (where transformers >= 4.51 saves it) or ``chat_template.json``."""
    try:
        config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    config = config if isinstance(config, dict) else {}
    declared = {}
    for key in ("eos_token", "pad_token", "bos_token", "chat_template"):
        value = config.get(key)
        if isinstance(value, dict):  # older transformers wrote AddedToken dicts
            value = value.get("content")
        if key == "chat_template" and isinstance(value, list):  # [{"name": "default", "template": ...}, ...]
            value = next((item.get("template") for item in value
                          if isinstance(item, dict) and item.get("name") == "default"), None)
        if isinstance(value, str):
            declared[key] = value
    if "chat_template" not in declared:
        declared.update(_template_file(directory))
    return declared


def _template_file(directory: Path) -> dict[str, str]:
    """``{"chat_template": ...}`` from ``chat_template.jinja`` or ``chat_template.json``, or {}."""
    try:
        return {"chat_template": (directory / "chat_template.jinja").read_text(encoding="utf-8")}
    except (OSError, UnicodeDecodeError):
        pass
    try:
        value = json.loads((directory / "chat_template.json").read_text(encoding="utf-8")).get("chat_template")
    except (OSError, ValueError, AttributeError):
        return {}
    return {"chat_template": value} if isinstance(value, str) else {}


def _pick_token(inner, candidates: list[str | None]) -> str | None:
    for token in candidates:
        if token is not None and inner.token_to_id(token) is not None:
            return token
    return None


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
