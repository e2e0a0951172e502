"""Training threads on a CPU that other programs share.

PyTorch runs a CPU kernel on one thread per core, and every parallel region waits for its slowest thread.
When another program keeps a core busy, the thread on that core runs only part of the time and every
region waits for it: nano's training step on this project's 2-core machine took 3.6-4.1 s with 2 threads
against 0.18-0.19 s with 1 while another process kept one core busy (a QA run of a real blog trained at
314 tokens/s where one thread gave 5,900-8,600). The losses are the same either way (1 or 2 threads: the
same four losses to the last bit on the speeches plan).

``ThreadGuard`` samples, every few seconds of training, how much of the cores other programs used
(``/proc/stat``'s busy time less this process's own CPU time) and trains on the cores they leave: fewer
threads while they run, all of them again once they stop. ``LUNALM_THREAD_GUARD=0`` turns it off (the
test suite does, so that runs compared step by step use the same threads whatever else the machine does).
"""

from __future__ import annotations

import os
import time

import torch

INTERVAL_S = 5.0  # seconds of training between two looks at the machine


class ThreadGuard:
    """Lowers ``torch.set_num_threads`` while other programs keep cores busy, raises it again after."""

    def __init__(self, device_type: str, busy_seconds=None, own_seconds=time.process_time, clock=time.perf_counter,
                 cores: int | None = None):
        from lunalm.plan.probe import _cores

        self.most = torch.get_num_threads()
        self.cores = cores or len(_cores())
        self._busy, self._own, self._clock = busy_seconds or _busy_seconds, own_seconds, clock
        self.active = (device_type == "cpu" and self.most > 1 and os.environ.get("LUNALM_THREAD_GUARD") != "0"
                       and self._busy() is not None)
        self._last = self._sample() if self.active else None

    def _sample(self) -> tuple[float, float, float]:
        return self._clock(), self._own(), self._busy()

    def check(self) -> str | None:
        """Set the thread count for the cores left free since the last look (at most every ``INTERVAL_S``);
        the message to show when it changed, else None."""
        if not self.active or self._clock() - self._last[0] < INTERVAL_S:
            return None
        (then, own_then, busy_then), (now, own_now, busy_now) = self._last, self._sample()
        self._last = (now, own_now, busy_now)
        others = max(0.0, (busy_now - busy_then) - (own_now - own_then)) / (now - then)  # cores' worth
        threads = max(1, min(self.most, int(self.cores - others + 0.5)))
        if threads == torch.get_num_threads():
            return None
        torch.set_num_threads(threads)
        if threads < self.most:
            return (f"other programs keep ~{others:.1f} of the {self.cores} cores busy: training on {threads} of "
                    f"{self.most} threads until they stop (a thread sharing a busy core stalls every step)")
        return f"the cores are free again: training on {threads} threads"


def _busy_seconds() -> float | None:
    """Seconds the cores this process may use have been busy since boot, or None where it cannot be told."""
    from lunalm.plan.probe import _busy_ticks

    ticks = _busy_ticks()
    return None if ticks is None else ticks / os.sysconf("SC_CLK_TCK")
