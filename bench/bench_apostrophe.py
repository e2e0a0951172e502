"""Turkish apostrophe suffixes under lunalm's pre-tokenizer, against plain byte-level BPE, at every vocabulary.

Both tokenizers are trained on the first 90 % of the built-in corpus (speeches, index cut off) with the same
trainer settings; the other 10 % is held out. Per vocabulary it prints:

* suffix whole: of the distinct apostrophe words of the held-out text (``Türkiye'nin``, ``Ankara’da``; at
  least 200), how many have their suffix as one token (``nin``, or ``'nin``);
* stem + apostrophe: words where one token holds both the stem's last letter and the apostrophe (must be 0);
* characters per token on the held-out text;
* held-out bits per byte of a unigram model of each tokenizer's tokens (token frequencies of the training
  text, add-one smoothed): the cost of coding the held-out text token by token, a cheap stand-in for a
  trained model's bits per byte.

Plain BPE is ``tokenizers``' ByteLevel pre-tokenizer with its GPT-2 regex (contractions 's 't 're 've 'm
'll 'd split off). Vocabularies the corpus cannot fill at ``min_frequency`` 2 (it has ~25k distinct merges)
are trained with ``min_frequency`` 1 and marked.

``--gguf`` also measures llama.cpp's named pre-tokenizers (their regexes as llama.cpp runs them) on
lunalm's 8k vocabulary: how many more tokens each needs than lunalm's own split, on the held-out speeches
and on the news paragraphs of ``bench/data/news_tr.txt``.

    python bench/bench_apostrophe.py            # vocab 512 ... 50000
    python bench/bench_apostrophe.py --gguf
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from lunalm.tokenizer import SPECIAL_TOKENS, train_bpe  # noqa: E402

VOCABS = (512, 1024, 2048, 4096, 8192, 16384, 32768, 50000)
TIE = 1e-4  # relative: at 1024 the two tokenizers' held-out token counts differ by 3 of ~93,000
_APOSTROPHE_WORD = re.compile(r"[^\W\d_]+['’][^\W\d_]+")
_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
# llama.cpp's regexes for its named BPE pre-tokenizers (src/llama-vocab.cpp), as llama.cpp runs them.
LLAMA_CPP_PRE = {
    "llama-bpe": _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
                                 r"|\s+(?!\S)|\s+",
    "qwen2": _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "tekken": r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?"
              r"((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+"
              r"|\s+(?!\S)|\s+",
    "gpt-2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
}


def split_corpus() -> tuple[list[str], list[str]]:
    texts = [text.split("DİZİN")[0] for text in common.builtin_texts()]  # the place-name index is not prose
    cut = int(0.9 * len(texts))
    return texts[:cut], texts[cut:]


def train_plain(texts: list[str], vocab_size: int, min_frequency: int):
    """Plain byte-level BPE: the GPT-2 regex of tokenizers' ByteLevel, same normaliser and trainer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    inner = Tokenizer(models.BPE())
    inner.normalizer = normalizers.NFC()
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    inner.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    inner.train_from_iterator(texts, trainer=trainer)
    return inner


def suffix_counts(inner, words: list[str]) -> tuple[int, int]:
    """(words whose suffix is one token, words with a token holding stem and apostrophe)."""
    whole = merged = 0
    for word in words:
        apostrophe = max(word.find("'"), word.find("’"))
        spans = [(start - 1, end - 1) for start, end in inner.encode(" " + word).offsets]
        whole += any(span in ((apostrophe + 1, len(word)), (apostrophe, len(word))) for span in spans)
        merged += any(start < apostrophe < end for start, end in spans)
    return whole, merged


def held_out_costs(inner, train: list[str], held: list[str]) -> tuple[float, float]:
    """(characters per token, unigram bits per byte) on the held-out texts."""
    counts = Counter(i for encoding in inner.encode_batch(train) for i in encoding.ids)
    total, vocab = sum(counts.values()), inner.get_vocab_size()
    ids = [i for encoding in inner.encode_batch(held) for i in encoding.ids]
    bits = -sum(math.log2((counts[i] + 1) / (total + vocab)) for i in ids)
    return sum(map(len, held)) / len(ids), bits / sum(len(t.encode("utf-8")) for t in held)


def compare(vocab_size: int, train: list[str], held: list[str], words: list[str]) -> list[dict]:
    min_frequency = 2 if vocab_size <= 16384 else 1  # the corpus holds ~25k merges seen twice
    rows = []
    for name, inner in (("plain", train_plain(train, vocab_size, min_frequency)),
                        ("lunalm", train_bpe(train, vocab_size, min_frequency).inner)):
        whole, merged = suffix_counts(inner, words)
        chars_per_token, bits = held_out_costs(inner, train, held)
        rows.append({"vocab": vocab_size, "tokenizer": name, "learned": inner.get_vocab_size(),
                     "min_freq": min_frequency, "suffix_whole": whole, "stem_apostrophe": merged,
                     "chars_per_token": chars_per_token, "bits_per_byte": bits})
    return rows


def never_worse_than_plain(plain: dict, ours: dict) -> bool:
    return (ours["suffix_whole"] >= plain["suffix_whole"] and not ours["stem_apostrophe"]
            and ours["chars_per_token"] >= plain["chars_per_token"] * (1 - TIE)
            and ours["bits_per_byte"] <= plain["bits_per_byte"] * (1 + TIE))


def gguf_rows(train: list[str], held: list[str]) -> list[dict]:
    """Extra tokens each llama.cpp pre-tokenizer needs on lunalm's 8k vocabulary."""
    from tokenizers import Regex, pre_tokenizers

    tokenizer = train_bpe(train, 8192)
    news = [line for line in (common.BENCH_DIR / "data" / "news_tr.txt").read_text("utf-8").splitlines()
            if line and not line.startswith("#")]
    paragraphs = {"held-out speeches": held, "news paragraphs": [" ".join(news[i:i + 5]) for i in range(0, 100, 5)]}
    own = {name: sum(map(len, tokenizer.encode_batch(texts))) for name, texts in paragraphs.items()}
    rows = []
    for pre, pattern in LLAMA_CPP_PRE.items():
        inner = tokenizer.inner.__class__.from_str(tokenizer.inner.to_str())
        inner.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        row = {"pre": pre}
        for name, texts in paragraphs.items():
            theirs = sum(len(e.ids) for e in inner.encode_batch(texts, add_special_tokens=False))
            row[name] = 100 * (theirs / own[name] - 1)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", type=int, nargs="*", default=list(VOCABS))
    parser.add_argument("--gguf", action="store_true", help="measure llama.cpp's pre-tokenizers instead")
    args = parser.parse_args()
    train, held = split_corpus()
    if args.gguf:
        rows = gguf_rows(train, held)
        common.print_table(rows, [("pre", "llama.cpp pre", "s"), ("held-out speeches", "% tokens (speeches)", ".2f"),
                                  ("news paragraphs", "% tokens (news)", ".2f")])
        common.write_json("apostrophe_gguf", {"rows": rows})
        return
    words = sorted({word for text in held for word in _APOSTROPHE_WORD.findall(text)})
    print(f"{len(words)} distinct apostrophe words in the held-out text")
    rows = [row for vocab in args.vocab for row in compare(vocab, train, held, words)]
    common.print_table(rows, [("vocab", "vocab", "d"), ("tokenizer", "tokenizer", "s"), ("learned", "learned", "d"),
                              ("min_freq", "min freq", "d"), ("suffix_whole", "suffix whole", "d"),
                              ("stem_apostrophe", "stem+'", "d"), ("chars_per_token", "chars/token", ".4f"),
                              ("bits_per_byte", "unigram bits/byte", ".4f")])
    never_worse = all(never_worse_than_plain(plain, ours) for plain, ours in zip(rows[0::2], rows[1::2]))
    print(f"lunalm never worse than plain BPE (suffix whole; chars/token and bits/byte within {TIE:.0e}; "
          f"no stem+'): {never_worse}")
    common.write_json("apostrophe", {"words": len(words), "rows": rows, "never_worse": never_worse})


if __name__ == "__main__":
    main()
