"""evaluate(): totals over all targets (not a mean of batch means), accuracy, bits per byte, mode restore."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lunalm.evaluate import EvalResult, evaluate, token_byte_lengths
from lunalm.model import LunaLM, ModelConfig
from lunalm.tokenizer import train_bpe, train_char
from tests.conftest import TURKISH

VOCAB, T = 64, 12


@pytest.fixture
def model() -> LunaLM:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=VOCAB, context_length=T, n_layer=2, n_head=2, d_model=32)
    return LunaLM(cfg)


@pytest.fixture
def ragged_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Three batches with very different numbers of masked labels (and a smaller last batch)."""
    generator = torch.Generator().manual_seed(1)
    batches = []
    for batch_size, n_masked in ((4, 0), (4, 40), (2, 20)):
        inputs = torch.randint(0, VOCAB, (batch_size, T), generator=generator)
        labels = torch.randint(0, VOCAB, (batch_size, T), generator=generator)
        labels.view(-1)[:n_masked] = -100
        batches.append((inputs, labels))
    return batches


def manual_totals(model, batches):
    """(logits, labels) of all scored targets, concatenated across batches."""
    with torch.no_grad():
        logits = torch.cat([model(x).logits.flatten(0, 1) for x, _ in batches])  # (N, V)
    labels = torch.cat([y.flatten() for _, y in batches])  # (N,)
    keep = labels != -100
    return logits[keep], labels[keep]


@pytest.mark.parametrize("autocast", [None, lambda: torch.autocast("cpu", dtype=torch.bfloat16)])
def test_scoring_without_logits_equals_scoring_the_logits(model, ragged_batches, monkeypatch, autocast):
    """A lunalm model scores evaluation batches without (B, T, V) logits; the numbers are those of the
    logits path that any other model takes."""
    fast = evaluate(model, ragged_batches, bytes_per_token=3.0, autocast=autocast)
    monkeypatch.setattr(LunaLM, "supports_score_only", False)
    slow = evaluate(model, ragged_batches, bytes_per_token=3.0, autocast=autocast)
    assert fast.tokens == slow.tokens and fast.accuracy == slow.accuracy
    assert fast.loss == pytest.approx(slow.loss, rel=1e-6)
    model.eval()
    with torch.no_grad():
        out = model(*ragged_batches[1], score_only=True)
    assert out.logits is None and int(out.n_targets) == 4 * T - 40 and out.n_correct is not None


def test_a_head_that_is_not_a_plain_linear_is_scored_through_its_logits(model, ragged_batches):
    want = evaluate(model, ragged_batches, bytes_per_token=3.0)

    class Wrapped(torch.nn.Module):  # what a LoRA or quantized layer in the head's place looks like
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    model.lm_head = Wrapped(model.lm_head)
    got = evaluate(model, ragged_batches, bytes_per_token=3.0)
    assert got.tokens == want.tokens and got.accuracy == want.accuracy
    assert got.loss == pytest.approx(want.loss, rel=1e-6)


def test_loss_is_total_over_all_targets_not_mean_of_batch_means(model, ragged_batches):
    result = evaluate(model, ragged_batches, bytes_per_token=3.0)
    logits, labels = manual_totals(model, ragged_batches)
    expected = F.cross_entropy(logits, labels).item()
    assert result.loss == pytest.approx(expected, abs=1e-6)
    assert result.tokens == len(labels) == 4 * T + (4 * T - 40) + (2 * T - 20)
    assert result.perplexity == pytest.approx(math.exp(expected), rel=1e-6)
    with torch.no_grad():
        batch_means = [model(x, labels=y).loss.item() for x, y in ragged_batches]
    mean_of_means = sum(batch_means) / len(batch_means)
    assert abs(mean_of_means - expected) > 1e-3  # the ragged batches make the wrong formula visible


def test_accuracy_matches_manual_count(model, ragged_batches):
    result = evaluate(model, ragged_batches, bytes_per_token=3.0)
    logits, labels = manual_totals(model, ragged_batches)
    assert result.accuracy == (logits.argmax(-1) == labels).sum().item() / len(labels)
    # labels equal to the model's own predictions are all correct
    perfect = []
    for inputs, labels in ragged_batches:
        with torch.no_grad():
            predicted = model(inputs).logits.argmax(-1)
        perfect.append((inputs, torch.where(labels == -100, labels, predicted)))
    assert evaluate(model, perfect, bytes_per_token=1.0).accuracy == 1.0


def test_bits_per_byte_from_ratio(model, ragged_batches):
    result = evaluate(model, ragged_batches, bytes_per_token=2.5)
    assert result.bits_per_byte == pytest.approx(result.loss / math.log(2) / 2.5, rel=1e-12)


def test_bits_per_byte_exact_from_token_bytes(model, ragged_batches):
    token_bytes = torch.arange(VOCAB) % 4 + 1  # 1..4 bytes per token id
    result = evaluate(model, ragged_batches, bytes_per_token=100.0, token_bytes=token_bytes)
    _, labels = manual_totals(model, ragged_batches)
    n_bytes = token_bytes[labels].sum().item()
    assert result.bits_per_byte == pytest.approx(result.loss * result.tokens / math.log(2) / n_bytes,
                                                 rel=1e-12)


def test_training_mode_is_restored(model, ragged_batches):
    model.train()
    evaluate(model, ragged_batches, bytes_per_token=1.0)
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    evaluate(model, ragged_batches, bytes_per_token=1.0)
    assert not model.training


def test_autocast_factory_is_entered_once_per_batch(model, ragged_batches):
    entered = []

    class Recorder:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            return False

    evaluate(model, ragged_batches, bytes_per_token=1.0, autocast=Recorder)
    assert len(entered) == len(ragged_batches)


def test_errors_and_overflow(model, ragged_batches):
    with pytest.raises(ValueError, match="bytes_per_token"):
        evaluate(model, ragged_batches)
    masked = [(x, torch.full_like(y, -100)) for x, y in ragged_batches]
    with pytest.raises(ValueError, match="no target tokens"):
        evaluate(model, masked, bytes_per_token=1.0)
    from lunalm.evaluate import _result

    assert _result(1e6, 10, 0, 10.0).perplexity == math.inf
    assert EvalResult(1.0, 2.0, 0.5, 0.1, 3).to_dict() == {
        "loss": 1.0, "perplexity": 2.0, "accuracy": 0.5, "bits_per_byte": 0.1, "tokens": 3}


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_token_byte_lengths_sum_to_utf8_bytes(kind):
    texts = [t * 2 for t in TURKISH]
    tokenizer = train_bpe(texts, vocab_size=300) if kind == "bpe" else train_char(texts)
    lengths = token_byte_lengths(tokenizer)
    assert lengths.shape == (tokenizer.vocab_size,)
    assert lengths[tokenizer.eot_id] == 0 and lengths[tokenizer.pad_id] == 0
    text = TURKISH[1] + TURKISH[2]  # only characters the char tokenizer has seen (no unk)
    if kind == "bpe":  # byte-level: anything, including characters split across tokens
        text += "2024'te Ğ ş 日本語 🙂\n"
    ids = tokenizer.encode(text)
    assert lengths[ids].sum().item() == len(text.encode("utf-8"))
