"""Fixtures for connector tests: a fake clock (no real sleeping) and an ordered HTTP fake."""
from __future__ import annotations

import pytest
import responses
from responses.registries import OrderedRegistry


class FakeTime:
    """Injectable clock and sleep: sleeping advances the clock and is recorded, never waited."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.epoch = 1_700_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return self.epoch + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def kwargs(self) -> dict:
        return {"sleep": self.sleep, "clock": self.clock, "wall_clock": self.wall_clock,
                "rand": lambda: 0.5}


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def http():
    """`responses` with an ordered registry: calls must happen in the order they are arranged."""
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=True) as rsps:
        yield rsps
