"""The stdio wire's pure parts: which messages answer which request, which lines get an error."""

from __future__ import annotations

import anyio
import pytest

from k8s_gpu_mcp.transport.stdio import DROP, InFlight, answered_id, classify


def test_answered_id_on_the_sdk_form_and_on_any_key_order() -> None:
    assert answered_id('{"jsonrpc":"2.0","id":7,"result":{}}\n') == 7
    assert answered_id('{"jsonrpc":"2.0","id":"a\\"b","error":{"code":1,"message":"m"}}\n') == 'a"b'
    assert answered_id('{"result":{},"id":"x","jsonrpc":"2.0"}') == "x"  # parsed whole
    assert answered_id('{"jsonrpc":"2.0","id":3,"method":"elicitation/create"}') is None  # a request
    assert answered_id('{"jsonrpc":"2.0","method":"notifications/progress"}') is None
    assert answered_id('{"jsonrpc":"2.0","id":true,"result":{}}') is None
    assert answered_id("not json") is None


def test_classify_passes_valid_messages_and_answers_bad_ids_with_id_null() -> None:
    message, reply = classify('{"jsonrpc":"2.0","id":1,"method":"ping"}')
    assert reply is None and message.id == 1
    message, reply = classify('{"jsonrpc":"2.0","method":"notifications/x","params":{"id":1.5}}')
    assert reply is None  # "id" inside params is not the message's id
    _, reply = classify('{"jsonrpc":"2.0","id":1.5,"method":"ping"}')
    assert reply is not None and reply["id"] is None and reply["error"]["code"] == -32600
    assert classify('{"jsonrpc":"2.0","method":5}')[1] is DROP
    assert classify("{")[1]["error"]["code"] == -32700


def test_in_flight_counts_repeated_ids_and_ignores_unknown_answers() -> None:
    async def scenario() -> None:
        flight = InFlight()
        flight.add(1)
        flight.add(1)
        flight.add("1")
        flight.done(99)  # an answer to nothing the client sent in flight
        assert len(flight) == 3
        flight.done(1)
        flight.done("1")
        assert len(flight) == 1
        with anyio.move_on_after(0.05) as scope:
            await flight.wait_below(1)
        assert scope.cancelled_caught
        flight.done(1)
        await flight.wait_below(1)
        assert len(flight) == 0

    anyio.run(scenario)


@pytest.mark.parametrize(
    "line", ['{"jsonrpc":"2.0","id":null,"method":"ping"}', '{"jsonrpc":"2.0","id":[],"method":"x"}']
)
def test_null_and_array_ids_are_refused(line: str) -> None:
    assert classify(line)[1]["id"] is None
