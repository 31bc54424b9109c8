import time

import pytest

from demo_app.throttle import Throttle


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_first_call_does_not_wait():
    clock = FakeClock()
    t = Throttle(1.0, clock=clock, sleep=clock.sleep)
    assert t.wait() == 0.0
    assert clock.slept == []


def test_calls_are_spaced_by_interval():
    clock = FakeClock()
    t = Throttle(1.0, clock=clock, sleep=clock.sleep)
    t.wait()
    clock.now += 0.25
    assert t.wait() == pytest.approx(0.75)
    assert t.wait() == pytest.approx(1.0)


def test_no_wait_after_interval_elapsed():
    clock = FakeClock()
    t = Throttle(0.5, clock=clock, sleep=clock.sleep)
    t.wait()
    clock.now += 2.0
    assert t.wait() == 0.0


def test_negative_interval_rejected():
    with pytest.raises(ValueError):
        Throttle(-1)


@pytest.mark.timing_dependent
def test_real_clock_spacing():
    """Five calls 50 ms apart take ~200 ms of wall-clock time (loose upper bound for busy CI)."""
    t = Throttle(0.05)
    start = time.monotonic()
    for _ in range(5):
        t.wait()
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 0.2 + 0.25, elapsed
