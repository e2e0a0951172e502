"""lunalm.train.schedule (lr_at, default_lr, default_warmup) and setup.total_steps: pure numbers."""

import math

import pytest

from lunalm.config import TrainConfig
from lunalm.train.schedule import default_lr, default_warmup, lr_at
from lunalm.train.setup import total_steps

PEAK, RATIO = 1e-3, 0.1
FLOOR = PEAK * RATIO


def schedule(total: int, warmup: int, ratio: float = RATIO) -> list[float]:
    return [lr_at(step, peak=PEAK, warmup=warmup, total=total, min_ratio=ratio) for step in range(total)]


def test_warmup_is_linear_and_reaches_peak_at_its_last_step():
    lrs = schedule(total=100, warmup=10)
    assert lrs[0] == pytest.approx(PEAK / 10, rel=1e-12)  # step 0 already learns
    for step in range(10):
        assert lrs[step] == pytest.approx(PEAK * (step + 1) / 10, rel=1e-12)
    assert lrs[9] == PEAK
    assert lrs[10] == PEAK  # cosine starts at the peak (progress 0)
    increments = [b - a for a, b in zip(lrs[:10], lrs[1:10])]
    assert max(increments) - min(increments) < 1e-15  # equal steps: linear


def test_cosine_midpoint_is_halfway_between_peak_and_floor():
    warmup, total = 10, 110  # cosine spans steps 10..110: midpoint at step 60
    assert lr_at(60, peak=PEAK, warmup=warmup, total=total, min_ratio=RATIO) == pytest.approx(
        (PEAK + FLOOR) / 2, rel=1e-12)


def test_last_step_is_near_the_floor_and_the_end_is_the_floor():
    total, warmup = 1000, 50
    last = lr_at(total - 1, peak=PEAK, warmup=warmup, total=total, min_ratio=RATIO)
    assert FLOOR < last < FLOOR * 1.0001
    assert lr_at(total, peak=PEAK, warmup=warmup, total=total, min_ratio=RATIO) == pytest.approx(FLOOR)


@pytest.mark.parametrize("total,warmup,ratio", [(100, 10, 0.1), (37, 3, 0.0), (500, 0, 0.5), (5, 5, 0.1),
                                                (1, 0, 0.1), (20, 1, 1.0)])
def test_never_below_floor_and_non_increasing_after_warmup(total, warmup, ratio):
    lrs = schedule(total, warmup, ratio)
    beyond = [lr_at(step, peak=PEAK, warmup=warmup, total=total, min_ratio=ratio)
              for step in range(total, total + 50)]  # steps past the budget stay at the floor
    floor = PEAK * ratio
    assert all(lr >= floor - 1e-18 for lr in lrs + beyond)
    after = lrs[warmup:] + beyond
    assert all(b <= a for a, b in zip(after, after[1:]))
    assert all(0 < lr <= PEAK for lr in lrs)


def test_warmup_zero_starts_at_the_peak():
    lrs = schedule(total=50, warmup=0)
    assert lrs[0] == PEAK
    assert lrs[25] == pytest.approx((PEAK + FLOOR) / 2, rel=1e-12)


def test_default_warmup_is_five_percent_within_bounds():
    assert default_warmup(1) == 1
    assert default_warmup(10) == 1  # round(0.5) -> 0, raised to the minimum of 1
    assert default_warmup(100) == 5
    assert default_warmup(2000) == 100
    assert default_warmup(20_000) == 1000
    assert default_warmup(10**7) == 1000
    assert all(1 <= default_warmup(n) <= 1000 for n in range(1, 50_000, 97))


def test_default_lr_falls_with_size_and_is_clamped():
    sizes = [10**4, 10**5, 10**6, 3 * 10**6, 10**7, 5 * 10**7, 1.5 * 10**8, 10**9, 10**11]
    lrs = [default_lr(int(n)) for n in sizes]
    assert all(b <= a for a, b in zip(lrs, lrs[1:]))
    assert all(3e-4 <= lr <= 3e-3 for lr in lrs)
    assert default_lr(10**4) == 3e-3 and default_lr(10**11) == 3e-4  # clamped at both ends
    assert default_lr(10**6) == pytest.approx(3e-3)
    assert default_lr(10**7) == pytest.approx(3e-3 * 10 ** -0.3)  # ~1.5e-3
    assert default_lr(10**7) < default_lr(10**6)  # strictly decreasing inside the clamp
    assert default_lr(5 * 10**7) < default_lr(10**7)


def budget(**values) -> TrainConfig:
    return TrainConfig(micro_batch_size=4, **values)


def test_total_steps_defaults_to_one_epoch():
    assert total_steps(budget(), n_windows=100, global_batch=8, context_length=32) == math.ceil(100 / 8)
    assert total_steps(budget(), n_windows=3, global_batch=8, context_length=32) == 1  # at least one step


def test_total_steps_from_each_budget_alone():
    assert total_steps(budget(max_steps=7), n_windows=1000, global_batch=8, context_length=32) == 7
    assert total_steps(budget(epochs=2.5), n_windows=100, global_batch=8, context_length=32) == \
        math.ceil(2.5 * 100 / 8)  # 32
    assert total_steps(budget(tokens=10_000), n_windows=1000, global_batch=8, context_length=32) == \
        math.ceil(10_000 / (8 * 32))  # 40


def test_total_steps_is_the_smallest_budget_given():
    both = budget(max_steps=50, epochs=2.0)  # epochs: 25 steps
    assert total_steps(both, n_windows=100, global_batch=8, context_length=32) == 25
    all_three = budget(max_steps=50, epochs=2.0, tokens=3200)  # tokens: 13 steps
    assert total_steps(all_three, n_windows=100, global_batch=8, context_length=32) == 13
    steps_first = budget(max_steps=3, epochs=2.0, tokens=3200)
    assert total_steps(steps_first, n_windows=100, global_batch=8, context_length=32) == 3


def test_cooldown_falls_linearly_from_the_schedules_value_to_the_floor():
    total, warmup, start, steps = 100, 10, 40, 8
    plain = schedule(total, warmup)
    cooled = [lr_at(step, peak=PEAK, warmup=warmup, total=total, min_ratio=RATIO, cooldown=(start, steps))
              for step in range(total)]
    assert cooled[:start] == plain[:start]  # nothing changes before patience ran out
    begin = plain[start]
    for k in range(steps):
        assert cooled[start + k] == pytest.approx(begin + (FLOOR - begin) * (k + 1) / steps, rel=1e-12)
    assert cooled[start + steps - 1] == pytest.approx(FLOOR, rel=1e-12)  # the run's last step is at the floor
    assert all(lr == pytest.approx(FLOOR, rel=1e-12) for lr in cooled[start + steps:])


# --- warmup-stable-decay -----------------------------------------------------------------------------
def wsd(total: int, warmup: int, share: float = 0.3, ratio: float = RATIO) -> list[float]:
    return [lr_at(step, peak=PEAK, warmup=warmup, total=total, min_ratio=ratio, decay_share=share)
            for step in range(total)]


def test_wsd_holds_the_peak_then_falls_linearly_to_the_floor_after_the_last_step():
    lrs = wsd(total=100, warmup=10, share=0.3)  # decay over steps 70..99
    assert lrs[:10] == schedule(total=100, warmup=10)[:10]  # the same warmup as cosine
    assert lrs[10:71] == [PEAK] * 61  # step 70 is the decay's progress 0
    decrement = (PEAK - FLOOR) / 30
    for step in range(70, 100):
        assert lrs[step] == pytest.approx(PEAK - decrement * (step - 70), rel=1e-12)
    assert lr_at(100, peak=PEAK, warmup=10, total=100, min_ratio=RATIO, decay_share=0.3) == pytest.approx(FLOOR)
    assert lr_at(500, peak=PEAK, warmup=10, total=100, min_ratio=RATIO, decay_share=0.3) == pytest.approx(FLOOR)


@pytest.mark.parametrize("total,warmup,share,ratio", [(100, 10, 0.3, 0.1), (37, 3, 0.2, 0.0), (500, 0, 1.0, 0.5),
                                                      (5, 5, 0.3, 0.1), (1, 0, 0.3, 0.1), (20, 15, 0.9, 1.0)])
def test_wsd_never_decays_before_warmup_ends_nor_below_its_floor(total, warmup, share, ratio):
    lrs = wsd(total, warmup, share, ratio)
    after = lrs[warmup:]
    assert all(b <= a for a, b in zip(after, after[1:]))
    assert all(PEAK * ratio - 1e-18 <= lr <= PEAK for lr in after) and all(0 < lr <= PEAK for lr in lrs)
    if warmup < total:
        assert lrs[warmup] == PEAK  # the first step after warmup is at the peak, however large the share
    assert lrs[0] > 0


def test_the_early_anneal_of_a_wsd_run_starts_from_the_held_peak():
    cooldown = (40, 10)  # patience ran out at step 40, inside the stable phase
    lrs = [lr_at(s, peak=PEAK, warmup=10, total=100, min_ratio=RATIO, cooldown=cooldown, decay_share=0.3)
           for s in range(60)]
    assert lrs[39] == PEAK
    assert lrs[40] == pytest.approx(PEAK + (FLOOR - PEAK) / 10, rel=1e-12)
    assert lrs[49] == pytest.approx(FLOOR, rel=1e-12) and lrs[59] == pytest.approx(FLOOR, rel=1e-12)


def test_new_runs_decay_with_wsd_over_the_last_thirty_percent():
    train = TrainConfig()
    assert (train.schedule, train.decay_share, train.min_lr_ratio) == ("wsd", 0.3, 0.1)
