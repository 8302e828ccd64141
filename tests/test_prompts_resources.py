from __future__ import annotations

import json
import re

import pytest
from mcp.client import Client

from k8s_gpu_mcp.prompts import PROMPTS
from k8s_gpu_mcp.xid.catalog import lookup

TOOL_NAME = re.compile(r"\b((?:get|analyze|inspect|snapshot|list|kill|reset|describe|find)_[a-z_]+)")


@pytest.mark.anyio
async def test_every_prompt_is_listed_with_its_arguments(make_app):
    async with Client(make_app().server) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == set(PROMPTS)
    assert [a.name for a in prompts["investigate-stuck-job"].arguments] == ["pod", "namespace"]
    assert prompts["diagnose-xid-errors"].arguments[0].name == "since"


@pytest.mark.anyio
async def test_prompts_name_only_tools_that_exist(make_app):
    app = make_app(mode="operator")
    async with Client(app.server) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        for name, (fn, _, _) in PROMPTS.items():
            args = {"node": "gpu-node-5", "pod": "train-0", "since": "2h"}
            text = fn(
                **{k: v for k, v in args.items() if k in fn.__code__.co_varnames[: fn.__code__.co_argcount]}
            )
            named = set(TOOL_NAME.findall(text))
            assert named, name
            assert named <= tools, f"{name} names missing tools: {named - tools}"


@pytest.mark.anyio
async def test_xid_prompt_facts_come_from_the_catalog(make_app):
    async with Client(make_app().server) as client:
        result = await client.get_prompt("diagnose-xid-errors", {"since": "6h"})
    text = result.messages[0].content.text
    for code in (48, 79):
        info = lookup(code)
        assert f"XID {code} {info.name}: {info.severity}; {info.sre_action}" in text
    assert 'since="6h"' in text


@pytest.mark.anyio
async def test_resources_inventory_profiles_scenarios_and_xid_catalog(make_app):
    async with Client(make_app(scenario="thermal-slowdown", profile=None).server) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"gpu://inventory", "mock://profiles", "mock://scenarios"} <= uris
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "xid://catalog/{code}" in templates
        inventory = json.loads((await client.read_resource("gpu://inventory")).contents[0].text)
        assert inventory["gpu_count"] == 8 and inventory["source"]["mock"] is True
        scenarios = json.loads((await client.read_resource("mock://scenarios")).contents[0].text)
        assert scenarios["active"] == "thermal-slowdown"
        assert any(s["name"] == "thermal-slowdown" for s in scenarios["scenarios"])
        profiles = json.loads((await client.read_resource("mock://profiles")).contents[0].text)
        assert profiles["active"] == "h100-sxm5-80gb-x8" and len(profiles["profiles"]) >= 5
        entry = json.loads((await client.read_resource("xid://catalog/48")).contents[0].text)
        assert entry["code"] == 48 and entry["severity"] == "Fatal"


TRIAGE_MAX = 16 * 1024  # issue 14: a whole triage of one node, by the gpu-triage steps, under 16 KB


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", [None, "nvlink-down-xid74", "gpu-lost-xid79", "ecc-dbe-xid48", "zombie"])
async def test_a_whole_gpu_triage_stays_under_16_kb_of_tool_output(make_app, scenario):
    from k8s_gpu_mcp.prompts import TRIAGE_STEPS, triage_calls

    sizes = {}
    async with Client(make_app(scenario=scenario).server) as client:
        text = (await client.get_prompt("gpu-triage", {"node": "gpu-node-test"})).messages[0].content.text
        for tool, args in triage_calls("gpu-node-test"):
            assert f"Call {tool}(" in text  # the prompt says the call the test makes
            result = await client.call_tool(tool, args)
            sizes[tool] = sum(len(c.text.encode()) for c in result.content if hasattr(c, "text"))
            if tool != "describe_gpu_node":  # needs the cluster API, which a mock node has not
                assert not result.is_error and result.structured_content["detail"] == "summary", tool
    assert len(sizes) == len(TRIAGE_STEPS) == 7
    assert sum(sizes.values()) < TRIAGE_MAX, sizes
