"""get_gpu_telemetry: live readings, interpreted (thresholds from NVML, throttling decoded)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from k8s_gpu_mcp.diagnose.throttle import Category, ThrottleInputs, decode_reasons, interpret
from k8s_gpu_mcp.gpu.adapter import GpuLost
from k8s_gpu_mcp.gpu.readings import Telemetry
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import READ_ONLY, GpuSelector, Source, select_gpus, source

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


class TelemetryResult(ToolModel):
    source: Source
    gpus: list[GpuTelemetry]


def _headroom(threshold: int | None, current: int | None) -> int | None:
    return threshold - current if threshold is not None and current is not None else None


def build_telemetry(index: int, uuid: str | None, name: str | None, t: Telemetry) -> GpuTelemetry:
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


def lost_telemetry(index: int, uuid: str | None, name: str | None, reason: str) -> GpuTelemetry:
    return GpuTelemetry(
        index=index,
        uuid=uuid,
        name=name,
        lost=True,
        throttling=Throttling(
            active=None, causes=[], category=None, explanation="Throttling: Unknown (GPU lost)"
        ),
        unavailable={"*": reason},
    )


def register(app: AgentApp) -> None:
    def get_gpu_telemetry(gpus: GpuSelector = None) -> TelemetryResult:
        """Read live GPU telemetry and interpret it: temperature against NVML's own slowdown/shutdown
        thresholds with headroom, fan, power draw against the enforced limit, memory, utilization,
        SM and memory clocks against their maximums, P-state, and the decoded clock-event (throttle)
        reasons with a verdict such as "Throttling: Active, HW thermal slowdown: SM 1290 of 1980 MHz
        at 91 C (slowdown at 87 C)". Idle is not throttling."""
        items = []
        for ref in select_gpus(app, gpus):
            if ref.lost_reason:
                items.append(lost_telemetry(ref.index, ref.uuid, ref.name, ref.lost_reason))
                continue
            try:
                readings = app.backend.adapter.telemetry(ref)
            except GpuLost as lost:
                items.append(lost_telemetry(ref.index, ref.uuid, ref.name, f"GpuIsLost: {lost}"))
                continue
            items.append(build_telemetry(ref.index, ref.uuid, ref.name, readings))
        return TelemetryResult(source=source(app), gpus=items)

    app.add_tool(get_gpu_telemetry, title="GPU telemetry", annotations=READ_ONLY)
