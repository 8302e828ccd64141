from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from k8s_gpu_mcp.gateway.breaker import BreakerBoard, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_half_open_admits_one_probe():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    for _ in range(2):
        b.record(b.allow(), success=False)
    assert b.state == "closed"
    b.record(b.allow(), success=True)  # a success resets the count
    for _ in range(3):
        b.record(b.allow(), success=False)
    assert b.state == "open" and b.allow() is None
    clock.now = 9.9
    assert b.allow() is None and 0 < b.retry_in_s <= 0.1
    clock.now = 10
    probe = b.allow()
    assert probe is not None and probe.probe and b.state == "half_open"
    assert b.allow() is None and b.allow() is None  # exactly one probe
    b.record(probe, success=False)
    assert b.state == "open" and b.allow() is None
    clock.now = 20
    probe = b.allow()
    b.record(probe, success=True)
    assert b.state == "closed" and b.allow() is not None


def test_cancelled_probe_frees_the_slot():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, reset_after_s=1, clock=clock)
    b.record(b.allow(), success=False)
    clock.now = 1
    probe = b.allow()
    b.release(probe)
    assert b.state == "half_open" and b.allow() is not None


def test_late_results_of_calls_started_before_opening_do_not_close_it():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, reset_after_s=5, clock=clock)
    early = b.allow()
    b.record(b.allow(), success=False)
    assert b.state == "open"
    b.record(early, success=True)
    assert b.state == "open"


@given(st.lists(st.sampled_from(["allow", "ok", "fail", "release", "tick"]), max_size=60))
def test_never_more_than_one_probe_outstanding(ops):
    clock = Clock()
    b = CircuitBreaker(failure_threshold=2, reset_after_s=3, clock=clock)
    outstanding = []
    for op in ops:
        if op == "allow":
            permit = b.allow()
            if permit is not None:
                outstanding.append(permit)
        elif op == "tick":
            clock.now += 1
        elif outstanding:
            permit = outstanding.pop(0)
            if op == "release":
                b.release(permit)
            else:
                b.record(permit, success=op == "ok")
        assert sum(1 for p in outstanding if p.probe) <= 1
        if b.state == "open":
            assert not any(p.probe for p in outstanding)


def test_board_makes_one_breaker_per_node():
    board = BreakerBoard(failure_threshold=1)
    assert board.state("a") == "closed"
    breaker = board.get("a")
    breaker.record(breaker.allow(), success=False)
    assert board.state("a") == "open" and board.state("b") == "closed" and board.get("a") is breaker
