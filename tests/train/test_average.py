"""lunalm.train.average: the weight average's numbers, and a run evaluating, keeping and resuming it."""

import math

import pytest
import torch
from runhelp import tiny_config, write_corpus
from safetensors.torch import load_file

from lunalm.train import milestones
from lunalm.train.average import WeightAverage
from lunalm.train.loop import SilentUI
from lunalm.train.session import start


class Two(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(3))
        self.frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)


def test_the_average_is_the_normalised_exponential_average_and_the_raw_weights_come_back_bit_for_bit():
    model = Two()
    average = WeightAverage(model, horizon_share=0.1)
    assert average.decay(40) == pytest.approx(0.75)  # horizon 4 steps
    assert [name for name, _ in average.named] == ["a"]  # trainable parameters only
    with average.applied():  # nothing folded in yet: the raw weights stay
        assert torch.equal(model.a, torch.zeros(3))
    values = [1.0, 2.0, 4.0]
    for value in values:
        with torch.no_grad():
            model.a.fill_(value)
        average.update(40)
    d = 0.75
    weights = [(1 - d) * d ** 2, (1 - d) * d, 1 - d]  # newest weighs most
    expected = sum(w * v for w, v in zip(weights, values)) / sum(weights)
    raw = model.a.detach().clone()
    with average.applied():
        assert torch.allclose(model.a, torch.full((3,), expected), rtol=1e-6)
    assert torch.equal(model.a, raw)
    average.restart()
    with average.applied():
        assert torch.equal(model.a, raw)  # restarted from the current weights


def test_the_saved_average_loads_into_a_fresh_one_exactly():
    model = Two()
    average = WeightAverage(model, horizon_share=0.5)
    for value in (0.3, -1.7):
        with torch.no_grad():
            model.a.fill_(value)
        average.update(10)
    other = WeightAverage(Two(), horizon_share=0.5)
    other.load_state_dict(average.state_dict())
    assert other.weight == average.weight and torch.equal(other.average[0], average.average[0])
    with pytest.raises(ValueError, match="1 tensors"):
        WeightAverage(torch.nn.Linear(2, 2), 0.5).load_state_dict(average.state_dict())


def test_a_run_evaluates_and_keeps_the_average_and_trains_the_raw_weights(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus")
    seen = []
    evaluate = milestones.evaluate

    def recording(model, batches, **kwargs):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return evaluate(model, batches, **kwargs)

    monkeypatch.setattr(milestones, "evaluate", recording)
    run, status = start(tiny_config(tmp_path, corpus, max_steps=12, eval_every=6, ema_horizon=0.5), SilentUI(),
                        progress=False)
    assert status == "completed" and run.average is not None
    assert run.average.decay(12) == pytest.approx(1 - 1 / 6)  # a horizon of half the run: 6 steps
    final = load_file(str(run.checkpoints / "final" / "model.safetensors"))
    with run.average.applied():
        averaged = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    raw = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    assert all(torch.equal(final[k], averaged[k]) for k in final)  # final/ holds the average
    assert all(torch.equal(seen[-1][k], averaged[k]) for k in final)  # and the last evaluation saw it
    assert not all(torch.equal(raw[k], averaged[k]) for k in final)  # while the raw weights go on training
    assert math.isfinite(run.state.best_val_loss)


def test_new_runs_average_over_seven_percent_of_their_steps():
    from lunalm.config import TrainConfig

    assert TrainConfig().ema_horizon == 0.07
    assert WeightAverage(Two(), 0.07).decay(1500) == pytest.approx(1 - 1 / 105)
    assert WeightAverage(Two(), 0.07).decay(10) == 0.0  # a run shorter than 15 steps: the raw weights


def test_no_average_when_it_is_off(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    run, status = start(tiny_config(tmp_path, corpus, max_steps=4, ema_horizon=0.0), SilentUI(), progress=False)
    assert status == "completed" and run.average is None
    final = load_file(str(run.checkpoints / "final" / "model.safetensors"))
    state = run.model.state_dict()
    assert all(torch.equal(final[k], state[k]) for k in final)  # the last raw weights
