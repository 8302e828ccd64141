"""Protocol fuzzing over stdio: 10,000+ generated messages interleaved with valid calls.

The server must never exit, never write a byte to stdout that is not a JSON-RPC message, keep
answering valid calls correctly, and keep its memory bounded.
"""

from __future__ import annotations

import json
import random

from tests.reliability._stdio_peer import RawPeer

FUZZ_MESSAGES = 10_000
VALID_EVERY = 100


def fuzz_message(rng: random.Random, n: int) -> bytes:
    kind = rng.randrange(14)
    if kind == 0:  # malformed JSON
        return (
            rng.choice([b"{", b"}", b'{"jsonrpc": "2.0", "id": 1, ', b"null", b"nan", b'"str"', b"{'a': 1}"])
            + b"\n"
        )
    if kind == 1:  # wrong types
        return (
            json.dumps(
                {
                    "jsonrpc": rng.choice([2, "1.0", None]),
                    "id": rng.choice([[], {}, 1.5, True]),
                    "method": rng.choice([1, None, ["tools/call"]]),
                }
            ).encode()
            + b"\n"
        )
    if kind == 2:  # huge string (rare)
        size = 1_000_000 if n % 2000 == 0 else 10_000
        return (
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": f"huge-{n}",
                    "method": "tools/call",
                    "params": {"name": "x" * size, "arguments": {}},
                }
            ).encode()
            + b"\n"
        )
    if kind == 3:  # deep nesting
        depth = rng.choice([50, 500, 5000])
        return (
            b'{"jsonrpc":"2.0","id":"deep-%d","method":"tools/call","params":{"name":"get_gpu_inventory","arguments":{"gpus":'
            % n
            + b"[" * depth
            + b"]" * depth
            + b"}}}\n"
        )
    if kind == 4:  # unknown method
        return (
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": f"u-{n}",
                    "method": rng.choice(["nope", "tools/explode", "", "rpc.x"]),
                }
            ).encode()
            + b"\n"
        )
    if kind == 5:  # batch arrays
        return (
            json.dumps([{"jsonrpc": "2.0", "id": f"b-{n}", "method": "ping"}] * rng.randrange(0, 4)).encode()
            + b"\n"
        )
    if kind == 6:  # invalid UTF-8
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))).replace(b"\n", b"") + b"\n"
    if kind == 7:  # partial line: a message cut short, then a newline
        full = json.dumps({"jsonrpc": "2.0", "id": f"p-{n}", "method": "ping"}).encode()
        return full[: rng.randrange(1, len(full))] + b"\n"
    if kind == 8:  # bad tool arguments
        return (
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": f"a-{n}",
                    "method": "tools/call",
                    "params": {
                        "name": rng.choice(["get_gpu_inventory", "get_gpu_telemetry"]),
                        "arguments": {
                            "gpus": rng.choice([-1, 99, "x", [None], {"a": 1}, [1.5], "GPU-" + "f" * 40])
                        },
                    },
                }
            ).encode()
            + b"\n"
        )
    if kind == 9:  # params of the wrong shape
        return (
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": f"w-{n}",
                    "method": "tools/call",
                    "params": rng.choice(["x", 1, [], None]),
                }
            ).encode()
            + b"\n"
        )
    if kind == 10:  # notifications, valid and not
        return (
            json.dumps(
                {"jsonrpc": "2.0", "method": rng.choice(["notifications/cancelled", "notifications/x", 5])}
            ).encode()
            + b"\n"
        )
    if kind == 11:  # a response the server never asked for
        return json.dumps({"jsonrpc": "2.0", "id": f"r-{n}", "result": {}}).encode() + b"\n"
    if kind == 12:  # blank lines and whitespace
        return rng.choice([b"\n", b"   \n", b"\t\n"])
    return json.dumps({"jsonrpc": "2.0", "id": f"ok-{n}", "method": "ping"}).encode() + b"\n"


def test_ten_thousand_fuzz_messages_never_break_the_wire():
    rng = random.Random(20261121)
    peer = RawPeer("--profile", "h100-sxm5-80gb-x8")
    try:
        peer.initialize()
        peer.send(
            {
                "jsonrpc": "2.0",
                "id": "warm",
                "method": "tools/call",
                "params": {"name": "get_gpu_telemetry", "arguments": {}},
            }
        )
        peer.wait_for("warm")
        rss_start = peer.rss_kib()
        valid_calls = 0
        for n in range(FUZZ_MESSAGES):
            peer.write(fuzz_message(rng, n))
            if n % VALID_EVERY == 0:
                call_id = f"valid-{n}"
                peer.send(
                    {
                        "jsonrpc": "2.0",
                        "id": call_id,
                        "method": "tools/call",
                        "params": {
                            "name": "get_gpu_inventory",
                            "arguments": {"gpus": [n % 8], "detail": "full"},
                        },
                    }
                )
                reply = peer.wait_for(call_id)
                content = reply["result"]["structuredContent"]
                assert reply["result"].get("isError") is not True
                assert content["gpus"][0]["index"] == n % 8 and content["gpu_count"] == 8
                valid_calls += 1
        assert peer.proc.poll() is None, "the server exited under fuzzing"
        rss_end = peer.rss_kib()
        # early EOF in the middle of a line: the server exits cleanly
        peer.write(b'{"jsonrpc":"2.0","id":"eof","meth')
        assert peer.close() == 0
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()
    assert valid_calls == FUZZ_MESSAGES // VALID_EVERY
    for line in peer.raw_lines:  # every byte on stdout is a JSON-RPC message
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0" and ("result" in message or "error" in message), line[:200]
    assert rss_end - rss_start < 64 * 1024, f"RSS grew {rss_start} -> {rss_end} KiB"
