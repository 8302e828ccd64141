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

from k8s_gpu_mcp.gpu.nvml_constants import clock_event_mask
from k8s_gpu_mcp.host.procfs import ProcInfo

PROFILE_DIR = "profiles"
MAX_FILE_BYTES = 2 * 1024 * 1024  # the largest bundled profile is ~55 KB
MAX_DEPTH = 32  # profiles nest 5 levels deep, scenarios 6
SCENARIO_KEYS = {"name", "description", "profile", "gpus", "kernel_log", "xid_events", "nvml_errors"}
GPU_OVERLAY_KEYS = {
    "temperature",
    "clock_event_reasons",
    "clocks",
    "power",
    "utilization",
    "memory",
    "pcie",
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
    "mig_devices",
    "fabric",
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


# --- bounded file loading: a hostile or broken file is a FleetError, never a traceback ---


def _read_text(path: Path | Any, what: str) -> str:
    """The file's text, refused past MAX_FILE_BYTES or when it is not UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FleetError(f"{what}: cannot read it: {exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise FleetError(f"{what}: larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FleetError(f"{what}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _check_depth(data: Any, what: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH (walked level by level, containers only, without recursion)."""
    level = [data] if isinstance(data, dict | list) else []
    depth = 1
    while level:
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            if depth >= MAX_DEPTH and len(children):  # its children would be past the limit
                raise FleetError(f"{what}: nested deeper than {MAX_DEPTH} levels")
            below.extend(child for child in children if isinstance(child, dict | list))
        level = below
        depth += 1


def _parse_json(text: str, what: str) -> Any:
    try:
        data = json.loads(text)
    except RecursionError:
        raise FleetError(f"{what}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise FleetError(f"{what} is not valid json: {exc}") from None
    _check_depth(data, what)
    return data


def _yaml_loader() -> type:
    """yaml.SafeLoader without aliases (a billion-laughs file expands through them) and with a depth
    limit enforced while composing (before a deep document can exhaust the stack)."""
    import yaml

    class BoundedSafeLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type stubs
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed, {event.start_mark}")
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return BoundedSafeLoader


def _parse_yaml(text: str, what: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise FleetError(f"{what} is not valid yaml: {str(exc)[:300]}") from None
    except RecursionError:
        raise FleetError(f"{what}: nested too deeply") from None


def _profile_shape(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("gpus"), list):
        raise FleetError(f"{what}: a profile is a mapping with a 'gpus' list (docs/profiles.md)")
    if not all(isinstance(g, dict) for g in data["gpus"]):
        raise FleetError(f"{what}: every entry of 'gpus' must be a mapping")
    return data


def list_profiles() -> list[str]:
    folder = resources.files("k8s_gpu_mcp.gpu") / PROFILE_DIR
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def load_profile(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """Load a bundled profile by name, or a profile JSON file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        what = f"profile {path}"
        return path.stem, _profile_shape(_parse_json(_read_text(path, what), what), what)
    resource = resources.files("k8s_gpu_mcp.gpu") / PROFILE_DIR / f"{name_or_path}.json"
    if len(name_or_path) > 255 or not resource.is_file():
        raise FleetError(
            f"unknown profile {name_or_path[:80]!r}; valid profiles: {', '.join(list_profiles())} "
            "or a path to a .json file"
        )
    what = f"profile {name_or_path}"
    return name_or_path, _profile_shape(_parse_json(_read_text(resource, what), what), what)


def list_scenarios() -> list[str]:
    folder = resources.files("k8s_gpu_mcp") / "scenarios"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith((".yaml", ".json")))


def resolve_scenario(name_or_path: str) -> Path:
    """A path to a scenario file, or the name of a bundled scenario."""
    if len(name_or_path) > 4096:
        raise FleetError(f"scenario path too long: {len(name_or_path)} characters")
    path = Path(name_or_path)
    try:
        if path.is_file():
            return path
    except OSError as exc:  # ENAMETOOLONG on one component, ELOOP...
        raise FleetError(f"scenario {name_or_path[:80]!r}: {exc.strerror}") from None
    for suffix in (".yaml", ".json"):
        bundled = resources.files("k8s_gpu_mcp") / "scenarios" / f"{name_or_path}{suffix}"
        if bundled.is_file():
            return Path(str(bundled))
    raise FleetError(
        f"scenario not found: {name_or_path!r} is neither a file nor a bundled scenario ({', '.join(list_scenarios())})"
    )


def read_scenario(path: str) -> dict[str, Any]:
    p = resolve_scenario(path)
    what = f"scenario {path}"
    text = _read_text(p, what)
    data = _parse_yaml(text, what) if p.suffix in (".yaml", ".yml") else _parse_json(text, what)
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
            value = clock_event_mask(value)
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
        if key == "mig_devices" and isinstance(value, dict):  # {MIG device index: overlay}
            devices = list(gpu.get("mig_devices") or [])
            for dev_key, dev_overlay in value.items():
                at = next((n for n, d in enumerate(devices) if d.get("index") == int(dev_key)), None)
                if at is None:
                    raise FleetError(
                        f"{where}: MIG device {dev_key} does not exist; this GPU has "
                        f"{[d.get('index') for d in devices]}"
                    )
                devices[at] = _merge(devices[at], dev_overlay)
            gpu["mig_devices"] = devices
            continue
        gpu[key] = _merge(gpu.get(key), value)


def build_mock_node(profile: str | None, scenario_path: str | None, default_profile: str) -> MockNode:
    """Resolve the profile (flag, else the scenario's, else the default) and apply the scenario.

    A value of the wrong type anywhere in the files is a FleetError naming them, not a traceback."""
    try:
        return _build_mock_node(profile, scenario_path, default_profile)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        if isinstance(exc, FleetError):
            raise
        where = f"scenario {scenario_path}" if scenario_path else f"profile {profile or default_profile}"
        raise FleetError(
            f"{where}: a value has the wrong type or shape ({type(exc).__name__}: {str(exc)[:200]}); "
            "see docs/scenarios.md and docs/profiles.md"
        ) from None


def _build_mock_node(profile: str | None, scenario_path: str | None, default_profile: str) -> MockNode:
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


def mock_proc_info(gpu: dict[str, Any], pid: int) -> ProcInfo:
    """What the profile says about one of its GPU processes, in place of this machine's /proc.

    A captured pid (4242, ...) names a process on the captured node, not here: it is alive unless
    the profile marks it ``exited: true`` (the driver still lists it) or gives a ``state`` (``Z`` for
    defunct). Only pids a test registers with ``real: true`` are looked up in the local /proc.
    """
    entry: dict[str, Any] = next(
        (p for procs in (gpu.get("processes") or {}).values() for p in procs or [] if p.get("pid") == pid),
        {},
    )
    mock = "mock: the profile does not give it"
    if entry.get("exited"):
        return ProcInfo(pid, exists=False, unavailable={"*": "mock: the profile marks the process exited"})
    name = entry.get("name")
    return ProcInfo(
        pid,
        exists=True,
        cmdline=entry.get("command") or name,
        comm=name,
        state=entry.get("state", "R"),
        ppid=entry.get("ppid"),
        uid=entry.get("uid"),
        user=entry.get("user"),
        unavailable={k: mock for k in ("start_time", "cgroup") if k not in entry}
        | ({} if "uid" in entry else {"uid": mock}),
    )
