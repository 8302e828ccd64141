"""connect cluster's session pool: reuse, idle timeout, --max-sessions waves, launch failures, cleanup.

Each "session" is tests/launch/fake_node_session.py: the real agent (mock fleet) behind a stand-in
for the syringe that records when its "pod" is created and deleted. The e2e tier runs the real
syringe against a real API server (tests/e2e/test_connect_cluster_e2e.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from k8s_gpu_mcp.gateway.breaker import BreakerBoard
from k8s_gpu_mcp.gateway.discovery import Agent
from k8s_gpu_mcp.gateway.fanout import Fanout, FanoutConfig
from k8s_gpu_mcp.gateway.rpc import AgentError
from k8s_gpu_mcp.launch.cluster_sessions import SessionPool

pytestmark = pytest.mark.anyio
FAKE = Path(__file__).with_name("fake_node_session.py")


def make_pool(state: Path, bad: tuple[str, ...] = (), **kw) -> SessionPool:
    def argv(node: str) -> list[str]:
        return [sys.executable, str(FAKE), node, str(state), "image-pull" if node in bad else "ok"]

    return SessionPool(argv, **kw)


def opened(state: Path, node: str) -> int:
    p = state / f"{node}.opened"
    return len(p.read_text().splitlines()) if p.exists() else 0


def deleted(state: Path, node: str) -> bool:
    return (state / f"{node}.deleted").exists()


PARAMS = {"name": "get_gpu_inventory", "arguments": {}}


async def test_a_node_session_is_reused_and_closed_on_exit(tmp_path: Path) -> None:
    pool = make_pool(tmp_path)
    async with pool.running():
        first, _ = await pool.call_tool(Agent("n1", "node/n1"), PARAMS, {})
        second, size = await pool.call_tool(Agent("n1", "node/n1"), PARAMS, {})
        assert first["structuredContent"]["gpu_count"] == second["structuredContent"]["gpu_count"] == 1
        assert size > 100 and opened(tmp_path, "n1") == 1 and not deleted(tmp_path, "n1")
    assert deleted(tmp_path, "n1") and pool.sessions == {}


async def test_idle_session_closes_and_a_later_call_opens_a_new_one(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, idle_timeout_s=0.5)
    async with pool.running():
        await pool.call_tool(Agent("n1", "node/n1"), PARAMS, {})
        with anyio.fail_after(20):
            while "n1" in pool.sessions:
                await anyio.sleep(0.1)
        assert deleted(tmp_path, "n1")
        await pool.call_tool(Agent("n1", "node/n1"), PARAMS, {})
        assert opened(tmp_path, "n1") == 2


async def test_max_sessions_runs_nodes_in_waves(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, max_sessions=2)
    fanout = Fanout(pool, FanoutConfig(node_timeout_s=60, concurrency=2, retries=0), BreakerBoard(3, 30))
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))
        assert len(pool.sessions) <= 2

    agents = [Agent(f"n{i}", f"node/n{i}") for i in range(5)]
    async with pool.running():
        calls = await fanout.call_all(agents, "get_gpu_inventory", {}, on_progress=on_progress)
        assert [c.ok for c in calls] == [True] * 5, [c.error for c in calls]
        assert pool.peak == 2 and pool.opened_total == 5
        assert sum(deleted(tmp_path, a.node) for a in agents) == 3, "room was made by closing idle sessions"
    assert progress[-1] == (5, 5) and all(deleted(tmp_path, a.node) for a in agents)


async def test_a_node_whose_agent_cannot_start_is_that_nodes_error(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, bad=("bad",))
    fanout = Fanout(pool, FanoutConfig(node_timeout_s=60, concurrency=4, retries=0), BreakerBoard(3, 30))
    async with pool.running():
        calls = await fanout.call_all(
            [Agent("good", "node/good"), Agent("bad", "node/bad")], "get_gpu_inventory", {}
        )
    good, bad = calls
    assert good.ok and not bad.ok
    assert bad.error_kind == "image_pull" and "cannot be pulled on node 'bad'" in (bad.error or "")


async def test_shutting_down_refuses_new_sessions(tmp_path: Path) -> None:
    pool = make_pool(tmp_path)
    async with pool.running():
        pass
    with pytest.raises(AgentError) as err:
        await pool.call_tool(Agent("n1", "node/n1"), PARAMS, {})
    assert err.value.kind == "session_closed" and opened(tmp_path, "n1") == 0
