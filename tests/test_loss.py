"""lunalm.loss: the output head fused with its cross-entropy equals ``F.cross_entropy(F.linear(...))``.

Loss and gradients are compared with the plain computation in float32 (several chunks with a ragged last
one, one chunk, bias, frozen weight, extreme logits) and under CPU bfloat16 autocast; ``head_with_loss``
and its ``scoring_hint`` give the same result whichever way the scored rows are found.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lunalm import loss as fused_loss
from lunalm.loss import chunk_rows, linear_cross_entropy, linear_cross_entropy_scores
from lunalm.model import head_with_loss, output_with_loss, scoring_hint


def tensors(n=37, c=16, v=50, bias=False, seed=0):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, c, generator=generator, requires_grad=True)
    weight = (0.3 * torch.randn(v, c, generator=generator)).requires_grad_()
    b = (0.1 * torch.randn(v, generator=generator)).requires_grad_() if bias else None
    labels = torch.randint(0, v, (n,), generator=generator)
    return hidden, weight, b, labels


def loss_and_grads(compute, *leaves, scale=1.0):
    for leaf in leaves:
        if leaf is not None:
            leaf.grad = None
    loss = compute()
    (loss * scale).backward()
    return loss.detach(), [None if leaf is None else leaf.grad for leaf in leaves]


def plain(hidden, weight, bias, labels):
    return F.cross_entropy(F.linear(hidden, weight, bias).float(), labels, reduction="sum")


def assert_close(got, want, rtol=1e-5, atol=1e-6):
    (loss, grads), (want_loss, want_grads) = got, want
    torch.testing.assert_close(loss, want_loss, rtol=rtol, atol=atol)
    for grad, want_grad in zip(grads, want_grads):
        if want_grad is None:
            assert grad is None
        else:
            torch.testing.assert_close(grad, want_grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("elements", [50 * 8, 50 * 37, 2**22])  # 8-row chunks (5 of them, the last 5 rows)
@pytest.mark.parametrize("bias", [False, True])
def test_fused_head_and_loss_equal_the_plain_ones(monkeypatch, elements, bias):
    monkeypatch.setitem(fused_loss.CHUNK_ELEMENTS, "cpu", elements)
    hidden, weight, b, labels = tensors(bias=bias)
    leaves = (hidden, weight, b)
    want = loss_and_grads(lambda: plain(hidden, weight, b, labels), *leaves, scale=0.25)
    got = loss_and_grads(lambda: linear_cross_entropy(hidden, weight, b, labels), *leaves, scale=0.25)
    assert got[0].dtype == torch.float32 and got[0].shape == ()
    assert_close(got, want)


def test_chunk_rows_follow_the_element_budget():
    assert chunk_rows("cpu", 8192, 2048) == 128  # 2^20 elements / 8192
    assert chunk_rows("cpu", 4288, 2048, width=128) == 2**20 // 4288  # nano's width: the base budget
    assert chunk_rows("cpu", 8192, 2048, width=192) == 192  # 1.5 x 2^20 elements: the budget grows with the width
    assert chunk_rows("cpu", 8192, 2048, width=512) == 512  # 2^22 from width 512 on
    assert chunk_rows("cpu", 8192, 2048, width=768) == 512
    assert chunk_rows("cpu", 8192, 2048, width=64) == 128  # never below the base budget
    assert chunk_rows("cpu", 65, 768) == 768  # a char vocabulary: one chunk for the whole batch
    assert chunk_rows("cpu", 2**23, 10) == 1  # never zero rows
    assert chunk_rows("cuda", 32000, 16384) == 2**25 // 32000
    assert chunk_rows("cuda", 8192, 16384, float16=True) == fused_loss.HALF_CHUNK_ROWS
    assert chunk_rows("cuda", 8192, 16384, float16=False) == 2**25 // 8192  # bf16 and fp32: no cap


GiB = 2**30


def test_cuda_chunks_grow_with_the_card_in_power_of_two_buckets():
    elements = fused_loss.cuda_chunk_elements
    assert elements(None) == 2**25
    assert elements(4 * GiB) == elements(int(3.8 * GiB)) == 2**25  # a GTX 1650, by table or as it reports
    assert elements(24 * GiB) == elements(int(23.6 * GiB)) == 2**28
    assert elements(80 * GiB) == elements(int(79.1 * GiB)) == 2**30
    assert chunk_rows("cuda", 50257, 16384, memory_bytes=80 * GiB) == 16384  # gpt2 at 16 x 1024: one chunk
    assert chunk_rows("cuda", 50257, 16384, memory_bytes=24 * GiB) == 2**28 // 50257
    assert chunk_rows("cuda", 8192, 16384, float16=True, memory_bytes=80 * GiB) == fused_loss.HALF_CHUNK_ROWS
    assert chunk_rows("cpu", 8192, 2048, memory_bytes=80 * GiB) == 128  # the CPU's budget is its own


def test_the_card_a_run_trains_on_sets_the_budget(monkeypatch):
    monkeypatch.setitem(fused_loss.CUDA_MEMORY, "bytes", 80 * GiB)  # what lunalm.train.device.resolve records
    assert chunk_rows("cuda", 50257, 16384) == 16384
    assert chunk_rows("cuda", 50257, 16384, memory_bytes=4 * GiB) == 2**25 // 50257  # a planned card wins


def test_float16_weight_gradient_does_not_overflow_in_a_long_chunk():
    """8,192 rows that all push one vocabulary row the same way: its weight gradient is -2.4e5, beyond
    float16's 65504 if one chunk summed it in float16 (GradScaler could not help: the sum is unscaled)."""
    n, c, v = 8192, 16, 64
    hidden = torch.full((n, c), 30.0, requires_grad=True)
    weight = (1e-3 * torch.randn(v, c, generator=torch.Generator().manual_seed(0))).requires_grad_()
    labels = torch.zeros(n, dtype=torch.long)
    want = loss_and_grads(lambda: plain(hidden, weight, None, labels), hidden, weight)  # float32
    with torch.autocast("cpu", dtype=torch.float16):
        got = loss_and_grads(lambda: linear_cross_entropy(hidden, weight, None, labels), hidden, weight)
    assert all(bool(g.isfinite().all()) for g in got[1])
    assert_close(got, want, rtol=1e-2, atol=1e-2)


def test_frozen_weight_gets_no_gradient_and_the_hidden_one_is_right():
    hidden, weight, _, labels = tensors()
    weight.requires_grad_(False)
    want = loss_and_grads(lambda: plain(hidden, weight, None, labels), hidden)
    got = loss_and_grads(lambda: linear_cross_entropy(hidden, weight, None, labels), hidden)
    assert_close(got, want)
    assert weight.grad is None


@pytest.mark.parametrize("elements", [50 * 8, 2**22])
@pytest.mark.parametrize("autocast", [False, True])
def test_scores_without_logits_equal_the_plain_loss_and_argmax(monkeypatch, elements, autocast):
    monkeypatch.setitem(fused_loss.CHUNK_ELEMENTS, "cpu", elements)
    hidden, weight, b, labels = tensors(n=64, c=32, v=50, bias=True)
    labels[::3] = F.linear(hidden, weight, b).argmax(dim=1)[::3]  # some rows right, most wrong
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = F.linear(hidden, weight, b)  # what nn.Linear gives evaluation: bf16 under autocast
        loss, n_correct = linear_cross_entropy_scores(hidden, weight, b, labels)
    assert loss.dtype == torch.float32 and n_correct.dtype == torch.int64
    want = F.cross_entropy(logits.float(), labels, reduction="sum")
    torch.testing.assert_close(loss, want, rtol=1e-6, atol=1e-4)
    assert int(n_correct) == int((logits.argmax(dim=1) == labels).sum()) >= 64 // 3


def test_extreme_logits_stay_finite_and_exact():
    """A confident wrong row (target logit ~ -300 below the top) and a uniform row."""
    hidden, weight, _, labels = tensors(n=2, c=2, v=5)
    with torch.no_grad():
        weight.copy_(torch.tensor([[150.0, 0.0], [-150.0, 0.0], [0.0, 0.0], [0.0, 1e-3], [0.0, 0.0]]))
        hidden.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    labels = torch.tensor([1, 4])
    want = loss_and_grads(lambda: plain(hidden, weight, None, labels), hidden, weight)
    got = loss_and_grads(lambda: linear_cross_entropy(hidden, weight, None, labels), hidden, weight)
    assert torch.isfinite(got[0]) and float(got[0]) == pytest.approx(300.0 + torch.log(torch.tensor(5.0)).item(),
                                                                       rel=1e-5)
    assert_close(got, want)


def test_bfloat16_autocast_matches_the_plain_autocast_computation():
    hidden, weight, b, labels = tensors(n=64, c=32, v=40, bias=True)
    leaves = (hidden, weight, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = loss_and_grads(lambda: plain(hidden, weight, b, labels), *leaves)
        got = loss_and_grads(lambda: linear_cross_entropy(hidden, weight, b, labels), *leaves)
    assert all(g.dtype == torch.float32 for g in got[1])  # the master weights' dtype
    assert_close(got, want, rtol=2e-2, atol=2e-2)  # both round the same bf16 matmuls; sums differ in order


def test_a_bfloat16_model_gets_bfloat16_gradients_like_the_plain_head():
    hidden, weight, b, labels = tensors(n=64, c=32, v=40, bias=True)
    leaves = tuple(t.detach().to(torch.bfloat16).requires_grad_() for t in (hidden, weight, b))
    want = loss_and_grads(lambda: plain(*leaves, labels), *leaves)
    got = loss_and_grads(lambda: linear_cross_entropy(*leaves, labels), *leaves)
    assert [g.dtype for g in got[1]] == [torch.bfloat16] * 3
    assert_close(got, want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("hint", [None, False])
def test_head_with_loss_selects_scored_rows_whatever_the_hint(hint):
    hidden, weight, _, labels = tensors(n=24, v=30)
    head = torch.nn.Linear(16, 30, bias=False)
    head.weight = torch.nn.Parameter(weight.detach().clone())
    labels = labels.view(2, 12).clone()
    labels[0, :5] = -100
    labels[1, 9:] = -100
    states = hidden.view(2, 12, 16)
    want = output_with_loss(head(states), labels)
    with scoring_hint(hint):
        got = head_with_loss(states, head, labels)
    assert got.logits is None and int(got.n_targets) == int(want.n_targets) == 16
    torch.testing.assert_close(got.loss_sum, want.loss_sum)
    full = torch.zeros(2, 12, dtype=torch.long)
    with scoring_hint(True):  # every label scored: no selection, no check
        assert int(head_with_loss(states, head, full).n_targets) == 24


@pytest.mark.slow
@pytest.mark.parametrize("elements", [2**22, 300 * 16])  # one chunk: in the graph; 16-row chunks: eager
def test_compiled_model_gives_the_eager_loss_and_gradients(monkeypatch, elements):
    from lunalm.model import LunaLM, ModelConfig

    monkeypatch.setitem(fused_loss.CHUNK_ELEMENTS, "cpu", elements)
    torch.manual_seed(0)
    model = LunaLM(ModelConfig(vocab_size=300, context_length=32, n_layer=2, n_head=2, d_model=32)).train()
    inputs, labels = torch.randint(0, 300, (4, 32)), torch.randint(0, 300, (4, 32))
    labels[0, :5] = -100
    eager = loss_and_grads(lambda: model(inputs, labels).loss_sum, *model.parameters())
    torch._dynamo.reset()
    compiled = torch.compile(model)
    got = loss_and_grads(lambda: compiled(inputs, labels).loss_sum, *model.parameters())
    assert_close(got, eager, rtol=1e-5, atol=1e-5)


def test_a_head_that_is_not_a_plain_linear_gets_the_plain_loss_on_scored_rows():
    class Wrapped(torch.nn.Linear):  # stands for a LoRA or quantized layer in the head's place
        pass

    hidden, weight, _, labels = tensors(n=24, v=30)
    head = Wrapped(16, 30, bias=False)
    labels = labels.view(2, 12).clone()
    labels[1, 9:] = -100
    states = hidden.view(2, 12, 16)
    got = head_with_loss(states, head, labels)
    assert got.logits.shape == (21, 30) and int(got.n_targets) == 21
    torch.testing.assert_close(got.loss_sum, output_with_loss(head(states), labels).loss_sum)
