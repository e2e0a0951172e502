"""Sample prompts come from the corpus itself (first words of validation documents), and each prompt is
sampled with its own random stream."""

from __future__ import annotations

from lunalm.train.prompts import corpus_prompts, first_words


def test_first_words_cuts_at_a_word_boundary_on_the_first_text_line():
    assert first_words("\n\n  It was the best of times, it was") == "It was the best"
    assert first_words("Türkiye'nin başkenti Ankara'dır. Ankara") == "Türkiye'nin başkenti Ankara'dır. Ankara"
    assert first_words("Kahramanmaraşlılarınızdan " * 3, max_chars=40) == "Kahramanmaraşlılarınızdan"
    assert first_words("   \n") == ""


def test_corpus_prompts_are_beginnings_of_validation_documents(tmp_path):
    from lunalm.config import CorpusConfig, DataConfig, RunConfig, TokenizerConfig
    from lunalm.train.prepare import prepare_data

    corpus = tmp_path / "english"
    corpus.mkdir()
    starts = [f"Chapter {n} opens with a storm over the harbour" for n in range(30)]
    for n, start in enumerate(starts):
        (corpus / f"{n:02d}.txt").write_text(f"{start}. The sailors waited for morning light.\n", encoding="utf-8")
    config = RunConfig(corpus=CorpusConfig(paths=(str(corpus),)), tokenizer=TokenizerConfig(kind="char"),
                       data=DataConfig(context_length=16, val_fraction=0.3, cache_dir=str(tmp_path / "cache")))
    data = prepare_data(config, progress=False, log=lambda m: None)
    prompts = corpus_prompts(data)
    assert 2 <= len(prompts) <= 4 and len(set(prompts)) == len(prompts)
    val_text = data.tokenizer.decode(data.shards.split("val")[:].tolist())
    for prompt in prompts:
        assert prompt.startswith("Chapter ") and len(prompt.split()) == 4 and prompt in val_text


def test_prompts_prefer_beginnings_of_sentences_to_the_tails_of_long_documents(tmp_path):
    """A long document's validation tail can start mid-sentence (cut at a space); such a start is a prompt
    only when there are not enough others."""
    from types import SimpleNamespace

    import numpy as np

    from lunalm.tokenizer import train_char

    texts = ["harita ihtiyacını ikmale muvaffak olduk", "Efendiler, bugün burada toplandık",
             "ve ordunun sağlık işleri düzeldi", "Arkadaşlar, bu gece burada buluştuk"]
    tokenizer = train_char(texts)
    ids = np.concatenate([np.append(tokenizer.encode(t), tokenizer.eot_id) for t in texts])
    data = SimpleNamespace(tokenizer=tokenizer, shards=SimpleNamespace(
        n_tokens=lambda split: len(ids) if split == "val" else 0, split=lambda split: ids))
    assert corpus_prompts(data, n=2) == ("Efendiler, bugün burada toplandık", "Arkadaşlar, bu gece burada")
    assert corpus_prompts(data, n=3) == ("Efendiler, bugün burada toplandık", "Arkadaşlar, bu gece burada",
                                         "harita ihtiyacını ikmale muvaffak")


def test_each_prompt_is_sampled_with_its_own_seed(tmp_path, monkeypatch):
    from lunalm.train import milestones
    from lunalm.train.loop import SilentUI
    from lunalm.train.session import start
    from tests.train.runhelp import tiny_config, write_corpus

    seeds = []
    real = milestones.generate

    def recording(model, tokenizer, prompt, cfg, **kwargs):
        seeds.append((prompt, cfg.seed))
        return real(model, tokenizer, prompt, cfg, **kwargs)

    monkeypatch.setattr(milestones, "generate", recording)
    config = tiny_config(tmp_path, write_corpus(tmp_path / "corpus"), max_steps=2, sample_prompts=("Bir", "İki"))
    start(config, SilentUI(), progress=False)
    assert seeds == [("Bir", milestones.SAMPLE_SEED), ("İki", milestones.SAMPLE_SEED + 1)]
