"""deploy/Containerfile without a container engine: replay its RUN steps into a temp dir, then run the
installed agent. Catches a broken COPY list, wheel build, offline install or entry point before CI
builds the image. Needs PyPI (the wheel stage downloads the dependencies, as the image build does)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.containerfile import CONTAINERFILE, REPO, instructions, stages


def test_image_shape() -> None:
    text = CONTAINERFILE.read_text()
    ins = instructions(text)
    default = next(a for w, a in ins if w == "ARG" and a.startswith("PYTHON_IMAGE="))
    # pinned: an exact patch tag (digest noted in the file) or a digest
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", default)
    built = stages(text)
    assert len(built) == 2, "multi-stage: build wheels, then a runtime with only the venv"
    runtime = dict(built[-1])
    assert runtime["USER"] == "10001", "non-root by default"
    assert runtime["ENTRYPOINT"] == '["k8s-gpu-mcp"]'
    assert "/opt/k8s-gpu-mcp/bin" in runtime["ENV"]
    assert "compileall" in " ".join(a for w, a in built[-1] if w == "RUN")


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs /bin/sh")
def test_replay_install_and_run(tmp_path: Path) -> None:
    text = CONTAINERFILE.read_text()
    src, wheels, opt = tmp_path / "src", tmp_path / "wheels", tmp_path / "opt"
    src.mkdir()
    base_python = getattr(sys, "_base_executable", sys.executable)
    paths = {"/wheels": str(wheels), "/opt/k8s-gpu-mcp": str(opt), "/src": str(src)}

    def localize(cmd: str) -> str:
        for old, new in paths.items():
            cmd = re.sub(rf"(?<![\w/]){re.escape(old)}(?=[/\s]|$)", new, cmd)
        # `python` at the start of a command is the base image's interpreter
        return re.sub(r"(^|&&\s*)python(?=\s)", rf"\1{shlex.quote(base_python)}", cmd)

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KUBERNETES_SERVICE_HOST", "PYTHONPATH", "VIRTUAL_ENV")
    }
    for stage in stages(text):
        for word, args in stage:
            if word == "COPY" and not args.startswith("--from"):
                *sources, dest = args.split()
                for s in sources:
                    target = src / dest.removeprefix("./") if dest not in ("./", ".") else src
                    origin = REPO / s
                    if origin.is_dir():
                        shutil.copytree(
                            origin, target if dest not in ("./", ".") else src / s, dirs_exist_ok=True
                        )
                    else:
                        shutil.copy2(origin, src / origin.name if dest in ("./", ".") else target)
            if word == "RUN" and not args.startswith("useradd"):
                cmd = localize(args)
                proc = subprocess.run(
                    ["sh", "-c", cmd], cwd=src, env=env, capture_output=True, text=True, timeout=600
                )
                assert proc.returncode == 0, (
                    f"RUN {args}\n-> {cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
                )

    agent = opt / "bin" / "k8s-gpu-mcp"
    assert agent.is_file() and not wheels.exists(), "wheels are removed from the runtime stage"
    assert list((opt / "lib").glob("python3*/site-packages/k8s_gpu_mcp/__pycache__/*.pyc")), "compileall ran"
    help_ = subprocess.run([str(agent), "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert help_.returncode == 0 and "serve" in help_.stdout and "connect" in help_.stdout
    tools = subprocess.run(
        [str(agent), "tools", "--nvml-mode", "mock"], capture_output=True, text=True, env=env, timeout=60
    )
    assert tools.returncode == 0, tools.stderr
    assert "get_gpu_inventory" in tools.stdout and "describe_gpu_node" in tools.stdout
    plugin = opt / "bin" / "kubectl-gpu_mcp"
    assert subprocess.run(
        [str(plugin), "--help"], capture_output=True, text=True, timeout=60
    ).stdout.startswith("usage: kubectl gpu-mcp")


def test_runtime_config_is_what_an_engine_sets() -> None:
    """The real-node tier's image takes its config from here (tests/containerfile.py)."""
    from tests.containerfile import BASE_PATH, runtime_config

    cfg = runtime_config(CONTAINERFILE.read_text())
    assert cfg.user == "10001"
    assert cfg.entrypoint == ["k8s-gpu-mcp"] and cfg.cmd == ["serve"]
    assert cfg.env["PATH"] == f"/opt/k8s-gpu-mcp/bin:{BASE_PATH}"
    assert cfg.env["PYTHONDONTWRITEBYTECODE"] == "1" and cfg.env["PYTHONUNBUFFERED"] == "1"
    assert cfg.labels["org.opencontainers.image.title"] == "k8s-gpu-mcp"


def test_image_replay_refuses_what_it_cannot_replay(tmp_path: Path) -> None:
    from tests.e2e.realnode.image import build_stage, runtime_stage

    with pytest.raises(ValueError, match="HEALTHCHECK"):
        build_stage([("HEALTHCHECK", "CMD true")], tmp_path)
    with pytest.raises(ValueError, match="COPY from the context"):
        runtime_stage([("COPY", "src /src")], tmp_path, tmp_path / "rootfs")
