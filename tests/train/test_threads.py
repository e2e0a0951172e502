"""The thread guard: fewer training threads while other programs keep cores busy, all of them after."""

from __future__ import annotations

import torch

from lunalm.train import threads as threads_module
from lunalm.train.threads import ThreadGuard


class Machine:
    """A 2-core machine whose busy time and this process's CPU time the test moves by hand."""

    def __init__(self):
        self.now = self.busy = self.own = 0.0

    def run(self, seconds: float, own_cores: float, other_cores: float) -> None:
        self.now += seconds
        self.own += seconds * own_cores
        self.busy += seconds * (own_cores + other_cores)


def guard_on(machine: Machine, monkeypatch) -> ThreadGuard:
    monkeypatch.setenv("LUNALM_THREAD_GUARD", "1")
    torch.set_num_threads(2)
    return ThreadGuard("cpu", busy_seconds=lambda: machine.busy, own_seconds=lambda: machine.own,
                       clock=lambda: machine.now, cores=2)


def test_a_busy_core_takes_a_thread_and_gives_it_back(monkeypatch):
    before = torch.get_num_threads()
    try:
        machine = Machine()
        guard = guard_on(machine, monkeypatch)
        assert guard.active and guard.most == 2
        machine.run(2.0, own_cores=2.0, other_cores=0.0)
        assert guard.check() is None  # looks at most every INTERVAL_S
        machine.run(4.0, own_cores=2.0, other_cores=0.0)
        assert guard.check() is None and torch.get_num_threads() == 2  # idle machine: both threads
        machine.run(6.0, own_cores=1.1, other_cores=0.9)  # another program took most of a core
        note = guard.check()
        assert torch.get_num_threads() == 1 and "~0.9 of the 2 cores busy" in note and "1 of 2 threads" in note
        machine.run(6.0, own_cores=1.0, other_cores=1.0)  # still there: stays at one thread, says nothing
        assert guard.check() is None and torch.get_num_threads() == 1
        machine.run(6.0, own_cores=1.0, other_cores=0.05)  # gone
        assert guard.check() == "the cores are free again: training on 2 threads" and torch.get_num_threads() == 2
        machine.run(6.0, own_cores=2.0, other_cores=0.3)  # a browser's share of a core keeps both threads
        assert guard.check() is None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_guard_stays_off_where_it_should(monkeypatch):
    machine = Machine()
    monkeypatch.setenv("LUNALM_THREAD_GUARD", "1")
    assert not ThreadGuard("cuda", busy_seconds=lambda: 0.0, cores=2).active  # a GPU run
    assert not ThreadGuard("distributed", busy_seconds=lambda: 0.0, cores=2).active  # ranks share the cores
    assert not ThreadGuard("cpu", busy_seconds=lambda: None, cores=2).active  # no /proc/stat (macOS, Windows)
    monkeypatch.setenv("LUNALM_THREAD_GUARD", "0")
    assert not ThreadGuard("cpu", busy_seconds=lambda: machine.busy, cores=2).active
    assert threads_module.INTERVAL_S >= 1.0
