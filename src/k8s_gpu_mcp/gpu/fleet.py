"""The mock fleet: profiles derived from real captures, and scenario files that overlay faults.

Profiles are JSON in ``gpu/profiles/`` (format: ``docs/profiles.md``). Scenarios are YAML or JSON
(format: ``docs/scenarios.md``). Both are validated here so a typo fails loudly instead of
silently serving the unmodified profile.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from k8s_gpu_mcp.diagnose.throttle import mask_from_names

PROFILE_DIR = "profiles"
SCENARIO_KEYS = {"name", "description", "profile", "gpus", "kernel_log", "xid_events", "nvml_errors"}
GPU_OVERLAY_KEYS = {
    "temperature",
    "clock_event_reasons",
    "clocks",
    "power",
    "utilization",
    "memory",
    "pstate",
    "fan_speed",
    "ecc",
    "remapped_rows",
    "retired_pages",
    "nvlinks",
    "lost",
    "processes",
    "nvml_errors",
    "mig_mode",
    "persistence_mode",
}


class FleetError(ValueError):
    """A profile or scenario that cannot be used; the message says why and what is valid."""


@dataclass
class MockNode:
    """A profile with its scenario applied: what the fake NVML serves."""

    profile_name: str
    state: dict[str, Any]
    scenario_name: str | None = None
    scenario_path: str | None = None
    kernel_log: list[str] = field(default_factory=list)
    xid_events: list[dict[str, int]] = field(default_factory=list)


def list_profiles() -> list[str]:
    folder = resources.files("k8s_gpu_mcp.gpu") / PROFILE_DIR
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def load_profile(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """Load a bundled profile by name, or a profile JSON file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return path.stem, json.loads(path.read_text())
    resource = resources.files("k8s_gpu_mcp.gpu") / PROFILE_DIR / f"{name_or_path}.json"
    if not resource.is_file():
        raise FleetError(
            f"unknown profile {name_or_path!r}; valid profiles: {', '.join(list_profiles())} or a path to a .json file"
        )
    return name_or_path, json.loads(resource.read_text())


def list_scenarios() -> list[str]:
    folder = resources.files("k8s_gpu_mcp") / "scenarios"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith((".yaml", ".json")))


def resolve_scenario(name_or_path: str) -> Path:
    """A path to a scenario file, or the name of a bundled scenario."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for suffix in (".yaml", ".json"):
        bundled = resources.files("k8s_gpu_mcp") / "scenarios" / f"{name_or_path}{suffix}"
        if bundled.is_file():
            return Path(str(bundled))
    raise FleetError(
        f"scenario not found: {name_or_path!r} is neither a file nor a bundled scenario ({', '.join(list_scenarios())})"
    )


def read_scenario(path: str) -> dict[str, Any]:
    p = resolve_scenario(path)
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
        raise FleetError(f"scenario {path} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    if not isinstance(data, dict):
        raise FleetError(f"scenario {path} must be a mapping at the top level")
    unknown = set(data) - SCENARIO_KEYS
    if unknown:
        raise FleetError(
            f"scenario {path}: unknown keys {sorted(unknown)}; valid keys: {sorted(SCENARIO_KEYS)}"
        )
    return data


def _merge(base: Any, overlay: Any) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return copy.deepcopy(overlay)


def _check_error_names(errors: Any, where: str) -> None:
    from k8s_gpu_mcp.gpu.fake_nvml import ERROR_CODES_BY_NAME

    for fn, name in (errors or {}).items():
        if name not in ERROR_CODES_BY_NAME:
            raise FleetError(
                f"{where}: nvml_errors.{fn}: unknown NVML error {name!r}; valid: {sorted(ERROR_CODES_BY_NAME)}"
            )


def _overlay_gpu(gpu: dict[str, Any], overlay: dict[str, Any], where: str) -> None:
    unknown = set(overlay) - GPU_OVERLAY_KEYS
    if unknown:
        raise FleetError(f"{where}: unknown keys {sorted(unknown)}; valid keys: {sorted(GPU_OVERLAY_KEYS)}")
    _check_error_names(overlay.get("nvml_errors"), where)
    for key, value in overlay.items():
        if key == "clock_event_reasons" and isinstance(value, list):
            value = mask_from_names(value)
        if key == "nvlinks" and isinstance(value, dict):
            links = list(gpu.get("nvlinks") or [])
            for link_key, link_overlay in value.items():
                link = int(link_key)
                if not 0 <= link < len(links):
                    raise FleetError(
                        f"{where}: NVLink {link} does not exist; this GPU has {len(links)} links"
                    )
                links[link] = _merge(links[link], link_overlay)
            gpu["nvlinks"] = links
            continue
        gpu[key] = _merge(gpu.get(key), value)


def build_mock_node(profile: str | None, scenario_path: str | None, default_profile: str) -> MockNode:
    """Resolve the profile (flag, else the scenario's, else the default) and apply the scenario."""
    path = resolve_scenario(scenario_path) if scenario_path else None
    scenario = read_scenario(str(path)) if path else {}
    name, state = load_profile(profile or scenario.get("profile") or default_profile)  # freshly parsed: ours
    gpus = state["gpus"]
    for key, overlay in (scenario.get("gpus") or {}).items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise FleetError(f"scenario GPU key {key!r} must be an index 0..{len(gpus) - 1}") from None
        if not 0 <= index < len(gpus):
            raise FleetError(f"scenario names GPU {index}, but profile {name} has GPUs 0..{len(gpus) - 1}")
        _overlay_gpu(gpus[index], overlay or {}, f"scenario gpus.{index}")
    if scenario.get("nvml_errors"):
        _check_error_names(scenario["nvml_errors"], "scenario")
        state["nvml_errors"] = dict(scenario["nvml_errors"])
    kernel_log = scenario.get("kernel_log") or []
    if isinstance(kernel_log, str):
        kernel_log = kernel_log.splitlines()
    return MockNode(
        profile_name=name,
        state=state,
        scenario_name=scenario.get("name") or (path.stem if path else None),
        scenario_path=scenario_path,
        kernel_log=[line for line in kernel_log if line.strip()],
        xid_events=list(scenario.get("xid_events") or []),
    )
