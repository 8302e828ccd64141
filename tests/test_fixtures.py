"""The test data in the repository: every capture is listed with its source, and every one is used."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "tests" / "fixtures" / "captures"
REFERENCE = REPO / "tests" / "fixtures" / "reference" / "xid_catalog.md"


def _capture_files() -> set[str]:
    return {p.name for p in CAPTURES.iterdir() if p.name != "README.md"}


def test_every_capture_has_a_row_in_the_source_list() -> None:
    listed = set(re.findall(r"^\| `([^`]+\.(?:txt|xml))` \|", (CAPTURES / "README.md").read_text(), re.M))
    assert _capture_files(), f"no captures in {CAPTURES}"
    assert listed == _capture_files()


def test_every_capture_is_read_by_a_test_or_a_profile() -> None:
    """Only the files the tests need are kept (the full set lives in ../shared/fixtures/captures)."""
    texts = [p.read_text(encoding="utf-8") for p in (REPO / "tests").rglob("*.py")]
    texts += [
        p.read_text(encoding="utf-8")
        for p in (REPO / "src" / "k8s_gpu_mcp" / "gpu" / "profiles").glob("*.json")
    ]
    unused = {name for name in _capture_files() if not any(name in text for text in texts)}
    assert not unused


def test_xid_reference_is_in_the_repository() -> None:
    assert REFERENCE.is_file() and "## 4." in REFERENCE.read_text(encoding="utf-8")
