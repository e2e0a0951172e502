"""Windows, labels and the resumable sampler: exact properties on tiny token streams."""

import numpy as np
import pytest
import torch

from lunalm.data.batches import (IGNORE_INDEX, WindowSampler, eval_starts, fixed_eval_batches,
                                 make_example, window_starts)
from lunalm.data.shards import ConcatTokens
from lunalm.errors import DataError


def test_window_starts_default_stride_is_context():
    assert window_starts(17, 4).tolist() == [0, 4, 8, 12]
    assert window_starts(16, 4).tolist() == [0, 4, 8]  # 12..16 would need token 16
    assert window_starts(17, 4, stride=2).tolist() == [0, 2, 4, 6, 8, 10, 12]
    assert window_starts(5, 4).tolist() == [0]


def test_too_small_corpus_is_a_data_error():
    with pytest.raises(DataError, match=r"4 tokens.*context_length 4.*smaller context_length"):
        window_starts(4, 4)
    with pytest.raises(DataError):
        WindowSampler(np.arange(3), context_length=8)


def test_labels_are_inputs_shifted_no_wrap_around():
    tokens = np.arange(100, 120)  # distinct values, so positions are identifiable
    inputs, labels = make_example(tokens, 5, 6)
    assert inputs.tolist() == list(range(105, 111))
    assert labels.tolist() == list(range(106, 112))
    assert labels[-1] == tokens[5 + 6]  # the token after the window ...
    assert labels[-1] != inputs[0]  # ... never the window's first token (the torch.roll bug)
    assert np.array_equal(labels[:-1], inputs[1:])


def test_batches_are_int64_tensors_with_shifted_labels():
    tokens = np.arange(1000, 1200, dtype=np.uint16)
    sampler = WindowSampler(tokens, context_length=8, seed=3)
    inputs, labels = sampler.next_batch(5)
    assert inputs.shape == labels.shape == (5, 8)
    assert inputs.dtype == labels.dtype == torch.int64
    assert torch.equal(labels[:, :-1], inputs[:, 1:])
    assert torch.equal(labels[:, -1], inputs[:, -1] + 1)  # the real next token of an arange stream
    assert int(labels.min()) != IGNORE_INDEX


def test_every_token_is_a_target_exactly_once_per_epoch():
    context, n_windows = 7, 13
    tokens = np.arange(context * n_windows + 1)
    sampler = WindowSampler(tokens, context_length=context, seed=11)
    targets = []
    for _ in range(n_windows // 3 + 1):  # 15 windows: one epoch plus two of the next
        targets.append(sampler.next_batch(3)[1].flatten())
    first_epoch = torch.cat(targets)[: context * n_windows]
    assert sorted(first_epoch.tolist()) == list(range(1, len(tokens)))


def test_epochs_shuffle_differently_and_count():
    sampler = WindowSampler(np.arange(41), context_length=4, seed=0)  # 10 windows
    first = sampler.next_starts(10)
    assert sampler.epoch == 1 and sampler.position == 0 and sampler.epochs_completed == 1.0
    second = sampler.next_starts(10)
    assert sorted(first.tolist()) == list(range(0, 40, 4))
    shift = int(np.random.default_rng([0, 1, 1]).integers(0, 4))  # epoch 1's offset
    assert sorted(second.tolist()) == [min(start + shift, 36) for start in range(0, 40, 4)]
    assert np.argsort(first).tolist() != np.argsort(second).tolist()  # another order
    sampler.next_starts(5)
    assert sampler.epochs_completed == 2.5


def test_later_epochs_move_every_window_by_one_offset():
    tokens = np.arange(1000)
    sampler = WindowSampler(tokens, context_length=16, seed=3)  # 62 windows; the last full one starts at 983
    shifts = []
    for epoch in range(12):
        starts = np.sort(sampler.next_starts(sampler.n_windows))
        shift = int(starts[0])
        assert starts.tolist() == [min(16 * i + shift, 983) for i in range(62)]  # one offset, clipped
        assert 0 <= shift < 16 and starts.max() + 17 <= len(tokens)  # every window full, none past the end
        shifts.append(shift)
    assert shifts[0] == 0 and len(set(shifts[1:])) > 4  # the first epoch as before, then varied offsets
    inputs, labels = WindowSampler(tokens, 16, seed=3).next_batch(1)
    assert torch.equal(labels[:, :-1], inputs[:, 1:])
    strided = WindowSampler(tokens, context_length=16, stride=4, seed=3)
    strided.next_starts(strided.n_windows)
    assert len({int(start) % 4 for start in strided.next_starts(strided.n_windows)}) == 1  # one offset < stride
    fixed = WindowSampler(tokens, context_length=16, seed=3, shift=False)
    assert all(sorted(fixed.next_starts(62).tolist()) == list(range(0, 992, 16)) for _ in range(5))


def test_batch_spanning_epoch_boundary():
    sampler = WindowSampler(np.arange(41), context_length=4, seed=5)  # 10 windows
    reference = WindowSampler(np.arange(41), context_length=4, seed=5)
    order = np.concatenate([reference.next_starts(10), reference.next_starts(10)])
    sampler.next_starts(7)
    assert sampler.next_starts(6).tolist() == order[7:13].tolist()
    assert (sampler.epoch, sampler.position) == (1, 3)
    big = WindowSampler(np.arange(41), context_length=4, seed=5).next_starts(25)  # > 2 epochs
    assert big[:20].tolist() == order.tolist()


@pytest.mark.parametrize("consumed", [0, 4, 9, 10, 17])
def test_restored_state_gives_same_next_batches(consumed):
    tokens = np.arange(5, 46)  # 10 windows of 4
    original = WindowSampler(tokens, context_length=4, seed=42)
    if consumed:
        original.next_batch(consumed)
    state = original.state_dict()
    assert all(type(v) is int for v in state.values())
    expected = [original.next_batch(3) for _ in range(5)]  # crosses at least one epoch boundary

    restored = WindowSampler(tokens, context_length=4, seed=999)
    restored.load_state_dict(state)
    for want, got in zip(expected, (restored.next_batch(3) for _ in range(5))):
        assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])
    assert restored.state_dict() == original.state_dict()


def test_state_from_other_data_is_refused():
    state = WindowSampler(np.arange(41), context_length=4).state_dict()
    with pytest.raises(DataError, match="10 windows"):
        WindowSampler(np.arange(81), context_length=4).load_state_dict(state)


def test_same_seed_same_batches_other_seed_differs():
    tokens = np.arange(401)
    a, b, c = (WindowSampler(tokens, 8, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.next_batch(6)[0], b.next_batch(6)[0])
    assert not torch.equal(WindowSampler(tokens, 8, seed=1).next_batch(6)[0], c.next_batch(6)[0])


def test_fixed_eval_batches_deterministic_evenly_spaced():
    tokens = np.arange(1001)
    first = fixed_eval_batches(tokens, 10, batch_size=4, n_batches=3)
    again = fixed_eval_batches(tokens, 10, batch_size=4, n_batches=3)
    assert len(first) == 3
    for (x1, y1), (x2, y2) in zip(first, again):
        assert x1.shape == (4, 10) and torch.equal(x1, x2) and torch.equal(y1, y2)
        assert torch.equal(y1[:, :-1], x1[:, 1:])
    starts = eval_starts(1001, 10, 12)
    assert starts[0] == 0 and starts[-1] == 1001 - 11
    assert np.all(np.diff(starts) >= 10)  # no overlap: no token scored twice
    assert [int(x[i, 0]) for x, _ in first for i in range(4)] == starts.tolist()


def test_fixed_eval_batches_small_split_never_overlaps():
    batches = fixed_eval_batches(np.arange(25), 4, batch_size=4, n_batches=5)  # only 6 windows fit
    assert [x.shape[0] for x, _ in batches] == [4, 2]
    labels = torch.cat([y.flatten() for _, y in batches]).tolist()
    assert len(labels) == len(set(labels))
    with pytest.raises(DataError):
        fixed_eval_batches(np.arange(4), 4, 2, 2)


def test_works_over_concatenated_shards():
    parts = [np.arange(0, 13, dtype=np.uint16), np.arange(13, 30, dtype=np.uint16),
             np.arange(30, 41, dtype=np.uint16)]
    view, flat = ConcatTokens(parts), np.arange(41)
    a, b = WindowSampler(view, 4, seed=9), WindowSampler(flat, 4, seed=9)
    for _ in range(4):
        assert torch.equal(a.next_batch(3)[1], b.next_batch(3)[1])
