"""get_gpu_telemetry: live readings, interpreted (thresholds from NVML, throttling decoded)."""

from typing import TYPE_CHECKING

from pydantic import Field

from k8s_gpu_mcp.diagnose import health
from k8s_gpu_mcp.diagnose import throttle as throttle_rules
from k8s_gpu_mcp.diagnose.throttle import Category, ThrottleInputs, decode_reasons, interpret
from k8s_gpu_mcp.gpu.adapter import GpuLost
from k8s_gpu_mcp.gpu.readings import Telemetry
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import (
    READ_ONLY,
    GpuSelector,
    NodeAnswer,
    NotSupported,
    Source,
    fold_unavailable,
    full_only,
    judge_each,
    node_answer,
    select_gpus,
    source,
    split_not_supported,
    summary_only,
)
from k8s_gpu_mcp.vocabulary import Detail

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "core"


class Temperature(ToolModel):
    current_c: int | None
    slowdown_c: int | None = Field(description="NVML's slowdown threshold for this GPU")
    shutdown_c: int | None = Field(description="NVML's shutdown threshold for this GPU")
    max_operating_c: int | None = Field(description="NVML's GPU max operating temperature")
    headroom_to_slowdown_c: int | None
    headroom_to_shutdown_c: int | None
    headroom_to_max_operating_c: int | None


class Power(ToolModel):
    draw_w: float | None
    limit_w: float | None = Field(description="enforced power limit")
    percent_of_limit: float | None


class Memory(ToolModel):
    used_mib: int | None
    free_mib: int | None
    reserved_mib: int | None
    total_mib: int | None


class Utilization(ToolModel):
    gpu_percent: int | None
    memory_percent: int | None
    encoder_percent: int | None
    decoder_percent: int | None


class Clocks(ToolModel):
    sm_mhz: int | None
    max_sm_mhz: int | None
    memory_mhz: int | None
    max_memory_mhz: int | None


class Throttling(ToolModel):
    active: bool | None = Field(description="null when the reasons could not be read")
    causes: list[str]
    category: Category | None
    explanation: str
    expected: str | None = Field(
        None,
        description="why the active reasons are normal operation (power cap at the limit, idle); null otherwise",
    )


class GpuTelemetry(ToolModel):
    index: int
    uuid: str | None
    pci_bus_id: str | None = Field(None, description="NVML form, e.g. 00000000:3B:00.0")
    name: str | None
    lost: bool = False
    temperature: Temperature | None = None
    fan_percent: int | None = None
    power: Power | None = None
    memory: Memory | None = None
    utilization: Utilization | None = None
    clocks: Clocks | None = None
    pstate: str | None = None
    clock_event_reasons: list[str] | None = Field(None, description="decoded NVML clock-event reason bits")
    clock_event_reasons_mask: int | None = None
    throttling: Throttling
    unavailable: dict[str, str] = Field(default_factory=dict, description="field -> why it is null")


class TelemetryResult(NodeAnswer):
    readings: list[str] | None = summary_only(
        "one line per GPU: temperature against NVML's slowdown threshold, power against the limit, "
        "utilization, SM clock against its maximum, memory used, P-state, throttling"
    )
    not_supported: NotSupported | None = full_only("fields this GPU model never has")
    gpus: list[GpuTelemetry] | None = full_only("every reading of every GPU, interpreted")
    source: Source


def reasons(g: GpuTelemetry) -> list[health.Reason]:
    """The thermal, power and throttling rules get_gpu_health applies, on this GPU's readings."""
    t, p = g.temperature, g.power
    th = g.throttling
    inputs = health.HealthInputs(
        index=g.index,
        temperature_c=t.current_c if t else None,
        slowdown_c=t.slowdown_c if t else None,
        shutdown_c=t.shutdown_c if t else None,
        max_operating_c=t.max_operating_c if t else None,
        power_draw_w=p.draw_w if p else None,
        power_limit_w=p.limit_w if p else None,
        throttling=throttle_rules.Throttling(th.active, th.causes, th.category, th.explanation, th.expected),
        unreadable=g.unavailable,
    )
    return [*health.thermal(inputs), *health.power(inputs), *health.throttle(inputs)]


def reading_line(g: GpuTelemetry) -> str:
    """One GPU's readings on one line ("?" where a value could not be read: see unavailable)."""

    def v(value: object, unit: str = "") -> str:
        return (
            "?" if value is None else f"{value:.0f}{unit}" if isinstance(value, float) else f"{value}{unit}"
        )

    if g.lost:
        return f"GPU {g.index}: lost"
    t, p, u, c, m = g.temperature, g.power, g.utilization, g.clocks, g.memory
    parts = [
        f"{v(t and t.current_c, ' C')} (slowdown {v(t and t.slowdown_c, ' C')})",
        f"{v(p and p.draw_w)}/{v(p and p.limit_w, ' W')}",
        f"util {v(u and u.gpu_percent, '%')}",
        f"SM {v(c and c.sm_mhz)}/{v(c and c.max_sm_mhz, ' MHz')}",
        f"mem {v(m and m.used_mib)}/{v(m and m.total_mib, ' MiB')}",
        g.pstate or "P?",
    ]
    if g.fan_percent is not None:
        parts.append(f"fan {g.fan_percent}%")
    th = g.throttling
    if th.active is None:
        parts.append("throttling unknown")
    elif not th.active:
        parts.append("not throttling")
    else:
        parts.append(f"throttling: {', '.join(th.causes)}" + (" (normal operation)" if th.expected else ""))
    return f"GPU {g.index}: " + ", ".join(parts)


def answer(app: "AgentApp", items: list[GpuTelemetry], detail: str) -> TelemetryResult:
    judged = judge_each(items, reasons)
    head = node_answer(
        detail,  # type: ignore[arg-type]
        judged,
        fold_unavailable({}, {g.index: g.unavailable for g in items}, keep_not_supported=detail == "full"),
        "No action: temperatures, power and clocks are within NVML's limits, and no GPU throttles "
        "beyond normal operation.",
    )
    result = TelemetryResult(**head, source=source(app))
    if detail == "full":
        result.gpus = items
        result.not_supported = split_not_supported(result)
    else:
        result.readings = [reading_line(g) for g in items]
    return result


def _headroom(threshold: int | None, current: int | None) -> int | None:
    return threshold - current if threshold is not None and current is not None else None


def build_telemetry(
    index: int, uuid: str | None, name: str | None, t: Telemetry, pci_bus_id: str | None = None
) -> GpuTelemetry:
    """Pure: NVML readings in, interpreted telemetry out."""
    temp = t.temperature_c
    draw, limit = t.power_draw_w, t.power_limit_w
    mask = t.clock_event_reasons_mask
    throttling = interpret(
        ThrottleInputs(
            mask=mask,
            sm_clock_mhz=t.sm_clock_mhz,
            max_sm_clock_mhz=t.max_sm_clock_mhz,
            temperature_c=temp,
            slowdown_c=t.slowdown_c,
            power_w=draw,
            power_limit_w=limit,
            unreadable_reason=t.unavailable.get("clock_event_reasons"),
            pstate=int(t.pstate[1:]) if t.pstate else None,
        )
    )
    return GpuTelemetry(
        index=index,
        uuid=uuid,
        pci_bus_id=pci_bus_id,
        name=name,
        temperature=Temperature(
            current_c=temp,
            slowdown_c=t.slowdown_c,
            shutdown_c=t.shutdown_c,
            max_operating_c=t.max_operating_c,
            headroom_to_slowdown_c=_headroom(t.slowdown_c, temp),
            headroom_to_shutdown_c=_headroom(t.shutdown_c, temp),
            headroom_to_max_operating_c=_headroom(t.max_operating_c, temp),
        ),
        fan_percent=t.fan_percent,
        power=Power(
            draw_w=draw,
            limit_w=limit,
            percent_of_limit=round(100 * draw / limit, 1) if draw is not None and limit else None,
        ),
        memory=Memory(
            used_mib=t.memory_used_mib,
            free_mib=t.memory_free_mib,
            reserved_mib=t.memory_reserved_mib,
            total_mib=t.memory_total_mib,
        ),
        utilization=Utilization(
            gpu_percent=t.utilization_gpu_percent,
            memory_percent=t.utilization_memory_percent,
            encoder_percent=t.utilization_encoder_percent,
            decoder_percent=t.utilization_decoder_percent,
        ),
        clocks=Clocks(
            sm_mhz=t.sm_clock_mhz,
            max_sm_mhz=t.max_sm_clock_mhz,
            memory_mhz=t.memory_clock_mhz,
            max_memory_mhz=t.max_memory_clock_mhz,
        ),
        pstate=t.pstate,
        clock_event_reasons=decode_reasons(mask) if mask is not None else None,
        clock_event_reasons_mask=mask,
        throttling=Throttling(**vars(throttling)),
        unavailable=t.unavailable,
    )


def lost_telemetry(
    index: int, uuid: str | None, name: str | None, reason: str, pci_bus_id: str | None = None
) -> GpuTelemetry:
    return GpuTelemetry(
        index=index,
        uuid=uuid,
        pci_bus_id=pci_bus_id,
        name=name,
        lost=True,
        throttling=Throttling(
            active=None, causes=[], category=None, explanation="Throttling: Unknown (GPU lost)"
        ),
        unavailable={"*": reason},
    )


def register(app: "AgentApp") -> None:
    def get_gpu_telemetry(gpus: GpuSelector = None, detail: Detail = "summary") -> TelemetryResult:
        """Read live GPU telemetry and interpret it: temperature against NVML's own slowdown/shutdown
        thresholds with headroom, fan, power draw against the enforced limit, memory, utilization,
        SM and memory clocks against their maximums, P-state, and the decoded clock-event (throttle)
        reasons with a verdict such as "Throttling: Active, HW thermal slowdown: SM 1290 of 1980 MHz
        at 91 C (slowdown at 87 C)". Idle is not throttling. The summary (default) gives the node's
        status and action, each GPU that is too hot, over its power limit or throttling abnormally with
        the readings that show it, and one line of readings per GPU; detail="full" adds every reading
        of every GPU (headroom to each threshold, memory, encoder/decoder, clock-event reason bits)."""
        items = []
        for ref in select_gpus(app, gpus):
            if ref.lost_reason:
                items.append(lost_telemetry(ref.index, ref.uuid, ref.name, ref.lost_reason, ref.bus_id))
                continue
            try:
                readings = app.backend.adapter.telemetry(ref)
            except GpuLost as lost:
                items.append(lost_telemetry(ref.index, ref.uuid, ref.name, f"GpuIsLost: {lost}", ref.bus_id))
                continue
            items.append(build_telemetry(ref.index, ref.uuid, ref.name, readings, ref.bus_id))
        return answer(app, items, detail)

    app.add_tool(get_gpu_telemetry, title="GPU telemetry", annotations=READ_ONLY)
