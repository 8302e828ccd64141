"""Soak: 10,000 mixed tool calls on one stdio agent. RSS grows at most 5%; no descriptor leaks."""

from __future__ import annotations

import itertools

from tests.reliability._stdio_peer import RawPeer

CALLS = 10_000
WARMUP = 1_000


def mixed_calls(tools: list[str]):
    arguments = [{}, {"gpus": [0]}, {"gpus": [1, 2]}, {"gpus": [99]}, {"gpus": "GPU-nope"}]
    return itertools.cycle([(tool, args) for tool in tools for args in arguments])


def test_ten_thousand_mixed_calls_hold_memory_and_descriptors():
    peer = RawPeer("--scenario", "thermal-slowdown")
    try:
        peer.initialize()
        peer.send({"jsonrpc": "2.0", "id": "list", "method": "tools/list"})
        tools = [
            t["name"]
            for t in peer.wait_for("list")["result"]["tools"]
            if not t["inputSchema"].get("required")
        ]
        calls = mixed_calls(tools)
        errors = 0
        rss_after_warmup = fds_after_warmup = 0
        for n in range(CALLS):
            tool, args = next(calls)
            peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": args},
                }
            )
            reply = peer.wait_for(n)
            assert "result" in reply, reply
            errors += bool(reply["result"].get("isError"))
            if n == WARMUP:
                rss_after_warmup, fds_after_warmup = peer.rss_kib(), peer.fd_count()
        rss_end, fds_end = peer.rss_kib(), peer.fd_count()
        assert peer.close() == 0
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()
    assert errors > 0  # the invalid selectors were answered as tool errors, not crashes
    assert rss_end <= rss_after_warmup * 1.05, f"RSS {rss_after_warmup} -> {rss_end} KiB"
    assert fds_end <= fds_after_warmup, f"fds {fds_after_warmup} -> {fds_end}"
