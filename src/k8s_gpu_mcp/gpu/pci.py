"""PCI bus ids in the forms NVML and the kernel print, and the conversions between them."""

from __future__ import annotations

import re

_PCI_RE = re.compile(
    r"^(?:PCI:)?(?:(?P<domain>[0-9A-Fa-f]{1,8}):)?(?P<bus>[0-9A-Fa-f]{1,2}):(?P<dev>[0-9A-Fa-f]{1,2})(?:\.(?P<fn>[0-7]))?$"
)


def normalize_bus_id(text: str | None) -> str | None:
    """``PCI:0000:3b:00`` / ``3b:00`` / ``0000:3b:00.0`` -> NVML's ``00000000:3B:00.0``; None if not a bdf."""
    if not text:
        return None
    m = _PCI_RE.match(text.strip())
    if not m:
        return None
    domain = int(m["domain"] or "0", 16)
    return f"{domain:08X}:{int(m['bus'], 16):02X}:{int(m['dev'], 16):02X}.{m['fn'] or '0'}"


def short_bus_id(bus_id: str) -> str:
    """NVML ``00000000:3B:00.0`` -> the kernel log's ``0000:3b:00``."""
    domain, bus, rest = bus_id.split(":")
    return f"{int(domain, 16):04x}:{bus.lower()}:{rest.split('.')[0].lower()}"


def kernel_bus_id(any_bus_id: str | None) -> str | None:
    """Any bus id form -> the kernel's short form ``0000:3b:00`` (as in ``NVRM: Xid (PCI:...)``)."""
    norm = normalize_bus_id(any_bus_id)
    return short_bus_id(norm) if norm else None
