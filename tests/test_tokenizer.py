"""Tokenizer behaviour: exact Turkish round trips, apostrophe pre-tokens, transformers parity."""

import json
import unicodedata

import pytest

from lunalm.errors import TokenizerError
from lunalm.tokenizer import (EOT_TOKEN, PAD_TOKEN, Tokenizer, default_vocab_size, train_bpe,
                              train_char)

CORPUS = [
    "Ankara'da hava bugün çok güzel. Türkiye'nin başkenti Ankara'dır.",
    "İstanbul'un köprüleri, Boğaziçi'nin iki yakasını birleştirir.\nIğdır'a gidiyoruz; ışıklar söndü.",
    "Öğrenciler 2024 yılında 12345 kitap okudu!\tŞaşırtıcı değil mi?",
    "Çiçekler açtı, kuşlar ötüyor.  Güneş doğdu 🌞 ve herkes mutlu 😀.",
] * 20

HARD_TEXTS = [
    "Ankara'da Türkiye'nin İĞDIR ığdır ŞŞ şş ÖÜÇ öüç",
    "  iki  boşluk   üç boşluk\tsekme\t\tiki sekme\n\nboş satır\r\nCRLF  \n ",
    "emoji 🇹🇷 👩‍👩‍👧 😀😀 ve sayılar 3.14159 1,000,000 ₺42",
    "tırnaklar ‘tek’ “çift” «açılı» — uzun tire … ve Ali’nin kitabı",
    "",
    " ",
    "\n",
    "unseen: ƒ ж 漢字 Ω",
]


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(CORPUS, vocab_size=400)


@pytest.fixture(scope="module")
def char():
    return train_char(CORPUS + HARD_TEXTS)


@pytest.mark.parametrize("text", HARD_TEXTS + CORPUS[:4])
def test_bpe_round_trip_is_exact(bpe, text):
    assert unicodedata.is_normalized("NFC", text)
    assert bpe.decode(bpe.encode(text)) == text


@pytest.mark.parametrize("text", HARD_TEXTS + CORPUS[:4])
def test_char_round_trip_is_exact(char, text):
    assert char.decode(char.encode(text)) == text
    assert len(char.encode(text)) == len(text)  # one token per code point


def test_char_unseen_character_maps_to_unk():
    tok = train_char(["abc"])
    assert tok.decode(tok.encode("abz"), skip_special_tokens=True) == "ab"


@pytest.mark.parametrize("word, apostrophe, suffix", [("Ankara", "'", "da"), ("Türkiye", "'", "nin"),
                                                     ("Ali", "’", "nin"), ("İSTANBUL", "'", "DA"),
                                                     ("IĞDIR", "’", "A"), ("1919", "'", "da")])
def test_apostrophe_stands_alone_between_stem_and_suffix(word, apostrophe, suffix):
    # all-capital words and İ/ı/I/i split the same way; no stem piece ever holds the apostrophe
    pieces = _split_pieces(f"Dün {word}{apostrophe}{suffix} gittik.")
    assert pieces[pieces.index(apostrophe) + 1] == suffix
    assert "".join(pieces[:pieces.index(apostrophe)]).endswith(word)
    assert not any(apostrophe in piece and len(piece) > 1 for piece in pieces)


def test_an_opening_quote_keeps_its_space():
    assert _split_pieces("dedi 'Gel' ve") == ["dedi", " '", "Gel", "'", " ve"]


def _split_pieces(text: str) -> list[str]:
    """The Turkish split stage alone (before byte-level mapping), so pieces are readable text."""
    from tokenizers import Regex, pre_tokenizers

    from lunalm.tokenizer import TURKISH_SPLIT_PATTERN

    split = pre_tokenizers.Split(Regex(TURKISH_SPLIT_PATTERN), behavior="isolated")
    return [piece for piece, _ in split.pre_tokenize_str(text)]


def test_full_pre_tokenizer_splits_at_the_apostrophe(bpe):
    # the real pipeline (split + byte-level): stem, apostrophe, suffix
    pieces = [p for p, _ in bpe.inner.pre_tokenizer.pre_tokenize_str("Ankara'da")]
    assert pieces == ["Ankara", "'", "da"]


def test_digits_split_in_groups_of_at_most_three():
    assert _split_pieces("1234567") == ["123", "456", "7"]


def test_pieces_cover_text_exactly():
    text = HARD_TEXTS[1] + HARD_TEXTS[0]
    assert "".join(_split_pieces(text)) == text


def test_special_tokens_present(bpe, char):
    for tok in (bpe, char):
        assert tok.inner.token_to_id(EOT_TOKEN) == tok.eot_id == 0
        assert tok.inner.token_to_id(PAD_TOKEN) == tok.pad_id == 1
        assert tok.decode([tok.eot_id]) == EOT_TOKEN
    assert bpe.encode("a<|endoftext|>b")[1] == bpe.eot_id


def test_vocab_size_honoured():
    tok = train_bpe(CORPUS, vocab_size=300)
    assert tok.vocab_size <= 300
    assert train_bpe(CORPUS * 3, vocab_size=5000).vocab_size <= 5000


def test_vocab_too_small_is_a_tokenizer_error():
    with pytest.raises(TokenizerError, match="vocab_size 100"):
        train_bpe(CORPUS, vocab_size=100)


def test_kinds(bpe, char):
    assert (bpe.kind, char.kind) == ("bpe", "char")


def test_encode_batch_matches_encode(bpe):
    texts = HARD_TEXTS + CORPUS[:4]
    assert bpe.encode_batch(texts) == [bpe.encode(t) for t in texts]


@pytest.mark.parametrize("name", ["bpe", "char"])
def test_save_load_same_hash_and_ids(tmp_path, request, name):
    tok = request.getfixturevalue(name)
    tok.save(tmp_path)
    for source in (tmp_path, tmp_path / "tokenizer.json"):
        loaded = Tokenizer.load(source)
        assert loaded.content_hash == tok.content_hash
        assert loaded.kind == tok.kind
        assert (loaded.eot_id, loaded.pad_id, loaded.vocab_size) == (tok.eot_id, tok.pad_id, tok.vocab_size)
        assert loaded.encode(HARD_TEXTS[0]) == tok.encode(HARD_TEXTS[0])


def test_hash_differs_between_tokenizers(bpe, char):
    assert bpe.content_hash != char.content_hash
    assert len(bpe.content_hash) == 64


@pytest.mark.parametrize("name", ["bpe", "char"])
def test_transformers_parity(tmp_path, request, name):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = request.getfixturevalue(name)
    tok.save(tmp_path)
    fast = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(tmp_path))
    assert auto.eos_token_id == tok.eot_id and auto.pad_token_id == tok.pad_id
    for text in HARD_TEXTS + CORPUS[:4]:
        ids = tok.encode(text)
        for hf in (fast, auto):
            assert hf.encode(text, add_special_tokens=False) == ids
            assert hf.decode(ids, clean_up_tokenization_spaces=False) == tok.decode(ids) == text


def test_load_missing_names_path(tmp_path):
    with pytest.raises(TokenizerError, match=str(tmp_path / "tokenizer.json")):
        Tokenizer.load(tmp_path)
    with pytest.raises(TokenizerError, match="nope.json"):
        Tokenizer.load(tmp_path / "nope.json")


def test_load_invalid_names_path(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenizerError, match="not a valid tokenizer.json"):
        Tokenizer.load(bad)


def test_pretrained_directory_uses_declared_eos(tmp_path, bpe):
    # a foreign HF directory: tokenizer.json whose eos is declared only in tokenizer_config.json
    from tokenizers import Tokenizer as HFTokenizer

    inner = HFTokenizer.from_str(bpe.inner.to_str())
    inner.add_special_tokens(["</s>"])
    spec = json.loads(inner.to_str())
    spec["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                             "use_regex": True}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": "</s>"}}))
    loaded = Tokenizer.load(tmp_path)
    assert loaded.kind == "pretrained"
    assert loaded.eot_id == inner.token_to_id("</s>")


def test_default_vocab_size_scales_and_caps():
    sizes = [default_vocab_size(n) for n in (10_000, 500_000, 3_000_000, 50_000_000, 10**10)]
    assert sizes == sorted(sizes)
    assert all(size % 64 == 0 for size in sizes)
    assert default_vocab_size(1_000_000) == 2048
    assert default_vocab_size(50_000_000) == 16384
    assert default_vocab_size(10**10) == 32768


@pytest.mark.parametrize("vocab_size", [4096])
def test_suffix_after_apostrophe_stays_whole_more_often_than_plain_bpe(vocab_size):
    # the 336 apostrophe words of the built-in corpus' last 10 %, both tokenizers trained on the rest; at
    # 4096 the old rule (word'suffix as one pre-token) merged 17 stems with the apostrophe
    from bench import bench_apostrophe

    train, held = bench_apostrophe.split_corpus()
    words = sorted({w for text in held for w in bench_apostrophe._APOSTROPHE_WORD.findall(text)})
    plain, lunalm = bench_apostrophe.compare(vocab_size, train, held, words)
    assert len(words) >= 200
    assert lunalm["stem_apostrophe"] == 0 and lunalm["suffix_whole"] > plain["suffix_whole"]
    assert bench_apostrophe.never_worse_than_plain(plain, lunalm)


@pytest.mark.slow
@pytest.mark.parametrize("vocab_size", [512, 1024, 2048, 8192, 16384, 32768, 50000])
def test_suffix_rule_holds_at_every_vocabulary(vocab_size):
    test_suffix_after_apostrophe_stays_whole_more_often_than_plain_bpe(vocab_size)


def test_analyze_plan_and_train_size_the_vocabulary_from_the_same_cleaned_text(tmp_path):
    """The vocabulary follows the characters the model trains on, not the files' bytes: a folder whose
    markup the cleaning removes gets one size from `luna analyze`, `luna plan` and `luna train` alike (a
    pandoc-converted blog got 9,088 from analyze's file sizes and 6,464 from the plan)."""
    from lunalm.cli.analyze import _sample
    from lunalm.config import CorpusConfig, TokenizerConfig
    from lunalm.corpus import Corpus
    from lunalm.plan.recommend import corpus_facts
    from lunalm.tokenizer import TextCount, corpus_vocab_size
    from lunalm.train.prepare import sample_texts
    from tests.conftest import TURKISH

    (tmp_path / "a.txt").write_text("".join(f"{n}. " + TURKISH[n % 4] for n in range(400)), encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n".join(f"<tr><td>{i}</td><td>x_{7 * i}</td></tr>" for i in range(5000)),
                                    encoding="utf-8")
    config = CorpusConfig(paths=(str(tmp_path),), filter_non_prose=True)
    corpus = Corpus(config)
    trained = TextCount()
    texts = list(sample_texts(corpus, 10**9, 10**9, trained))
    assert trained.complete and trained.chars == sum(map(len, texts)) < 0.6 * corpus.bytes
    _, analysed = _sample(corpus)
    facts, _ = corpus_facts(config, TokenizerConfig())
    assert facts.chars == trained.chars == analysed.chars
    vocab = corpus_vocab_size(corpus.files, trained)
    assert vocab == corpus_vocab_size(corpus.files, analysed) == default_vocab_size(facts.chars)
    assert vocab < default_vocab_size(corpus.bytes)
    part = TextCount()  # a sample cut short is scaled up by the corpus's bytes
    for text in sample_texts(corpus, 100_000, 10**9, part):
        pass
    assert not part.complete and abs(part.corpus_chars(corpus.bytes, False) / corpus.bytes - part.chars
                                     / part.raw_bytes) < 1e-6
