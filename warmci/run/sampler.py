"""CPU and memory of the machine, sampled with psutil through a run.

A daemon thread in doit's main process. It is started only once doit's
workers exist (the reporter starts it with the first job): forking while
another thread holds a lock can leave the child stuck on it. The same
thread drives the live terminal line (`on_tick`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil

INTERVAL = 0.5  # seconds: fine enough for jobs of a few seconds, ~7000 samples an hour


class Sampler:
    def __init__(self, interval: float = INTERVAL, on_tick: Callable[[], None] | None = None) -> None:
        self.interval, self.on_tick = interval, on_tick
        self.samples: list[tuple[float, float, float]] = []  # (epoch s, CPU % of all cores, memory used MB)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        psutil.cpu_percent(interval=None)  # the first reading only sets the baseline
        self.sample()  # memory now; CPU reads 0 until the next sample (no time has passed to measure)
        self._thread = threading.Thread(target=self._loop, name="warmci-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[float, float, float]]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self.sample()  # the tail of a run shorter than one interval still shows
        return self.samples

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:  # a terminal that went away must not end the sampling
                    pass

    def sample(self) -> None:
        mem = psutil.virtual_memory()
        self.samples.append((round(time.time(), 3), psutil.cpu_percent(interval=None),
                             round((mem.total - mem.available) / 2**20, 1)))
