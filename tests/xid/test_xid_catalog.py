"""Catalog completeness, buckets exactly as the reference lists them, and the derivation rule."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from k8s_gpu_mcp.xid import catalog
from k8s_gpu_mcp.xid.catalog import UNKNOWN_ACTION, derive_action, lookup

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(
    os.environ.get("XID_REFERENCE_MD", ROOT / "tests" / "fixtures" / "reference" / "xid_catalog.md")
)
CATALOG_JSON = ROOT / "src" / "k8s_gpu_mcp" / "xid" / "catalog.json"


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_xid_catalog", ROOT / "scripts" / "build_xid_catalog.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_code_1_to_176_present() -> None:
    codes = set(catalog.catalog())
    assert set(range(1, 177)) <= codes
    for code in range(1, 177):
        info = lookup(code)
        assert info.code == code and info.description and info.severity and info.sre_action


def test_buckets_equal_the_reference_markdown() -> None:
    doc = _builder().parse_reference(REFERENCE.read_text(encoding="utf-8"))
    committed = json.loads(CATALOG_JSON.read_text(encoding="utf-8"))
    assert committed == doc, "catalog.json is stale: re-run scripts/build_xid_catalog.py"
    # and independently of the builder: the immediate/investigatory cells of section 4, verbatim
    section = REFERENCE.read_text(encoding="utf-8").split("## 4.")[1].split("\n## ")[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells[0].isdigit():
            continue
        info = lookup(int(cells[0]))
        empty = {"—", "(blank in C)", ""}
        assert info.immediate_bucket == (None if cells[4] in empty else cells[4])
        assert info.investigatory_bucket == (None if cells[5] in empty else cells[5])
        assert info.mnemonic == cells[1].strip("`")


def test_known_actions_from_buckets() -> None:
    assert (lookup(48).severity, lookup(48).sre_action) == ("Fatal", "Drain the node and reset the GPU")
    assert (lookup(79).severity, lookup(79).sre_action) == ("Fatal", "Drain the node and reboot it")
    assert (lookup(95).severity, lookup(95).sre_action) == ("Critical", "Reset the GPU")
    assert (lookup(13).severity, lookup(13).sre_action) == ("Warning", "Restart the workload")
    assert lookup(63).severity == "Info"
    assert lookup(45).origin == "sympathetic"
    assert lookup(74).architectures == ("A100", "H100")


def test_derive_action_rule() -> None:
    assert derive_action("IGNORE", "IGNORE") == ("Info", "None")
    assert derive_action("IGNORE", "CONTACT_SUPPORT")[0] == "Info"
    assert derive_action("IGNORE (alt: RESET_GPU)", "CONTACT_SUPPORT")[0] == "Info"
    assert derive_action("RESTART_BM") == ("Fatal", "Drain the node and reboot it")
    assert derive_action(None) == ("Warning", UNKNOWN_ACTION)
    assert derive_action("SOMETHING_NEW") == ("Warning", UNKNOWN_ACTION)


@pytest.mark.parametrize("code", [0, -1, 177, 999, 10**9])
def test_unknown_codes_never_raise(code: int) -> None:
    info = lookup(code)
    assert info.severity == "Warning" and info.sre_action == UNKNOWN_ACTION and not info.documented


def test_lookup_of_non_int_never_raises() -> None:
    assert lookup("48").sre_action == UNKNOWN_ACTION  # type: ignore[arg-type]


def test_package_import_does_not_load_the_catalog() -> None:
    code = (
        "import sys, k8s_gpu_mcp.xid, k8s_gpu_mcp.xid.catalog as c;"
        "assert c._document.cache_info().currsize == 0;"
        "assert 'k8s_gpu_mcp.xid.parse' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
