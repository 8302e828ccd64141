"""deploy/Containerfile read as data: one list of install steps, replayed by the engine-less test
(tests/launch/test_containerfile.py) and by the real-node tier's image build
(tests/e2e/realnode/image.py), so neither can drift from what the image build runs."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTAINERFILE = REPO / "deploy" / "Containerfile"
# The Docker Official Image's default PATH (what `$PATH` means in an ENV line of the runtime stage).
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each FROM stage, in order."""
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


@dataclass
class ImageConfig:
    """What the runtime stage sets besides files: the OCI image config of the built image."""

    user: str = ""
    env: dict[str, str] = field(default_factory=lambda: {"PATH": BASE_PATH})
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def as_oci(self) -> dict[str, object]:
        return {
            "User": self.user,
            "Env": [f"{k}={v}" for k, v in self.env.items()],
            "Entrypoint": self.entrypoint,
            "Cmd": self.cmd,
            "Labels": self.labels,
        }


def _pairs(args: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(args))


def runtime_config(text: str) -> ImageConfig:
    """The config of the last stage (USER, ENV, ENTRYPOINT, CMD, LABEL), as an engine would set it."""
    cfg = ImageConfig()
    for word, args in stages(text)[-1]:
        if word == "USER":
            cfg.user = args
        elif word == "ENV":
            for k, v in _pairs(args).items():
                cfg.env[k] = v.replace("$PATH", cfg.env.get("PATH", BASE_PATH))
        elif word == "ENTRYPOINT":
            cfg.entrypoint = json.loads(args)
        elif word == "CMD":
            cfg.cmd = json.loads(args)
        elif word == "LABEL":
            cfg.labels.update(_pairs(args))
    return cfg
