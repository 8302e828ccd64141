"""Docs that cannot drift from the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tools_md_matches_the_live_tools_list():
    gen = _load(REPO / "scripts" / "gen_tools_doc.py")
    assert (REPO / "docs" / "tools.md").read_text() == gen.render(), (
        "docs/tools.md is stale: run `.venv/bin/python scripts/gen_tools_doc.py`"
    )


def test_tools_list_matches_the_golden_snapshot_in_every_mode():
    gen = _load(REPO / "scripts" / "gen_tools_doc.py")
    for mode in gen.MODES:
        path = gen.snapshot_path(mode)
        assert path.read_text() == gen.render_snapshot(mode), (
            f"{path.relative_to(REPO)} differs from the live tools/list: review the change, then run "
            "`.venv/bin/python scripts/gen_tools_doc.py`"
        )


def test_readme_names_every_cli_option_and_env_var():
    from k8s_gpu_mcp.cli import AGENT_OPTIONS, SERVE_OPTIONS, env_name

    readme = (REPO / "README.md").read_text()
    for flag, field, _, _ in AGENT_OPTIONS + SERVE_OPTIONS:
        if field in ("host_root", "proc_root", "sys_root", "audit_log", "kernel_log", "host", "port"):
            continue  # documented in docs/security.md and docs/kubernetes.md
        assert flag in readme and env_name(field) in readme, flag


def test_readme_lists_every_tool():
    gen = _load(REPO / "scripts" / "gen_tools_doc.py")
    readme = (REPO / "README.md").read_text()
    for tool in gen._listed("operator"):
        assert f"`{tool.name}`" in readme, tool.name


def test_every_bundled_scenario_has_a_row_in_docs_scenarios():
    from k8s_gpu_mcp.gpu.fleet import list_scenarios

    doc = (REPO / "docs" / "scenarios.md").read_text()
    missing = [name for name in list_scenarios() if f"| `{name}` |" not in doc]
    assert not missing, f"docs/scenarios.md lacks rows for {missing}"
