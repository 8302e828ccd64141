"""A circuit breaker per node: closed -> open after N consecutive failures -> half-open after a
cool-down, where exactly one probe call is admitted; its outcome closes or re-opens the circuit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class Permit:
    probe: bool


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    reset_after_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: State = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probe_in_flight: bool = False

    def allow(self) -> Permit | None:
        """May a call go out now? None: no. In half-open only one caller gets a (probe) permit
        until that probe reports."""
        if self.state == "closed":
            return Permit(probe=False)
        if self.state == "open":
            if self.clock() - self.opened_at < self.reset_after_s:
                return None
            self.state = "half_open"
        if self.probe_in_flight:
            return None
        self.probe_in_flight = True
        return Permit(probe=True)

    def record(self, permit: Permit, success: bool) -> None:
        """Report the outcome of a permitted call."""
        if permit.probe:
            self.probe_in_flight = False
        if success:
            if permit.probe or self.state == "closed":
                self.state, self.failures = "closed", 0
            return
        self.failures += 1
        if permit.probe or (self.state == "closed" and self.failures >= self.failure_threshold):
            self.state, self.opened_at = "open", self.clock()

    def release(self, permit: Permit) -> None:
        """A permitted call ended without a verdict (cancelled): free the probe slot, change nothing."""
        if permit.probe:
            self.probe_in_flight = False

    @property
    def retry_in_s(self) -> float:
        return max(0.0, self.reset_after_s - (self.clock() - self.opened_at)) if self.state == "open" else 0.0


@dataclass
class BreakerBoard:
    """One breaker per node, created on first use."""

    failure_threshold: int = 3
    reset_after_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)

    def get(self, node: str) -> CircuitBreaker:
        breaker = self.breakers.get(node)
        if breaker is None:
            breaker = CircuitBreaker(self.failure_threshold, self.reset_after_s, self.clock)
            self.breakers[node] = breaker
        return breaker

    def state(self, node: str) -> State:
        breaker = self.breakers.get(node)
        return breaker.state if breaker else "closed"
