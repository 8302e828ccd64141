"""Images for the real-node tier, built without an engine or a registry.

* ``archive``: a directory as a single-layer docker-archive (the `docker save` format), which
  ``ctr images import`` takes.
* ``agent``: the agent image, made by replaying deploy/Containerfile (tests/containerfile.py reads it)
  onto a Debian bookworm minbase root (tests/e2e/realnode/build.sh): the build stage runs here, the
  runtime stage's RUN lines run in a chroot, and USER/ENV/ENTRYPOINT/CMD/LABEL become the image config.
  The one difference from an engine build is the base: Debian's python3 (3.11.2) instead of
  python:3.11.7-slim, so ``python`` is linked to it as that image provides it.

    python3 -m tests.e2e.realnode.image agent CACHE_DIR     -> prints the image tar's path
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.containerfile import BASE_PATH, CONTAINERFILE, REPO, runtime_config, stages

AGENT_TAG = "docker.io/library/k8s-gpu-mcp:realnode"  # a non-latest tag: the kubelet never pulls it
# Build-stage paths, mapped into a temp dir here (the Containerfile keeps to these, see its header).
BUILD_PATHS = ("/src", "/wheels")


def archive(rootfs: Path, name: str, out: Path, config: dict[str, object]) -> Path:
    """rootfs as a one-layer docker-archive tagged name (owners kept numeric, xattrs kept)."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        work = Path(tmp)
        layer = work / "layer.tar"
        subprocess.run(
            ["tar", "-C", str(rootfs), "--numeric-owner", "--xattrs", "-cf", str(layer), "."], check=True
        )
        diff = hashlib.sha256()
        with layer.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                diff.update(chunk)
        digest = diff.hexdigest()
        (work / digest).mkdir()
        layer.rename(work / digest / "layer.tar")
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest}"]},
            "history": [{"created_by": "tests/e2e/realnode/image.py"}],
        }
        raw = json.dumps(image_config, separators=(",", ":")).encode()
        config_name = hashlib.sha256(raw).hexdigest() + ".json"
        (work / config_name).write_bytes(raw)
        manifest = [{"Config": config_name, "RepoTags": [name], "Layers": [f"{digest}/layer.tar"]}]
        (work / "manifest.json").write_text(json.dumps(manifest))
        subprocess.run(["tar", "-C", str(work), "-cf", str(out), "."], check=True)
    return out


def source_key() -> str:
    """A hash of everything the image build reads from the checkout."""
    h = hashlib.sha256()
    files = [CONTAINERFILE, REPO / "pyproject.toml", REPO / "README.md"]
    files += sorted(p for p in (REPO / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _copy(sources: list[str], dest: Path) -> None:
    """COPY from the checkout: a directory's contents go into dest, a file into the directory dest."""
    for s in sources:
        origin = REPO / s
        if origin.is_dir():
            shutil.copytree(origin, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, dest / origin.name)


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900
) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{cmd[-1][:200]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )


def build_stage(steps: list[tuple[str, str]], root: Path) -> None:
    """The wheel stage, on this machine: BUILD_PATHS live under root, `python` is this interpreter."""

    def localize(cmd: str) -> str:
        for p in BUILD_PATHS:
            cmd = re.sub(rf"(?<![\w/]){re.escape(p)}(?=[/\s]|$)", str(root) + p, cmd)
        return re.sub(r"(^|&&\s*)python(?=\s)", rf"\1{sys.executable}", cmd)

    cwd = root
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for word, args in steps:
        if word == "WORKDIR":
            cwd = Path(localize(args))
            cwd.mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            *sources, dest = args.split()
            _copy(sources, cwd if dest in ("./", ".") else cwd / dest.removeprefix("./"))
        elif word == "RUN":
            _run(["sh", "-c", localize(args)], cwd=cwd, env=env)
        elif word not in ("FROM", "ARG"):
            raise ValueError(f"build stage: {word} is not replayed here; extend tests/e2e/realnode/image.py")


def runtime_stage(steps: list[tuple[str, str]], build_root: Path, rootfs: Path) -> None:
    """The runtime stage's files: COPY --from=build, then each RUN in a chroot of rootfs."""
    (rootfs / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    python = rootfs / "usr/local/bin/python"
    if not python.exists():
        python.symlink_to("/usr/bin/python3")
    env = {"PATH": BASE_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    for word, args in steps:
        if word == "COPY" and args.startswith("--from="):
            _, src, dest = args.split()
            shutil.copytree(build_root / src.lstrip("/"), rootfs / dest.lstrip("/"), dirs_exist_ok=True)
        elif word == "COPY":
            raise ValueError("runtime stage: COPY from the context is not replayed here")
        elif word == "RUN":
            _run(["chroot", str(rootfs), "/bin/sh", "-c", args], env=env)
    for junk in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
    ):
        for p in (rootfs / junk).glob("*"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def build_agent(cache: Path) -> Path:
    """The agent image tar for this checkout, cached by source_key (only the newest kept)."""
    out = cache / f"agent-{source_key()}.tar"
    if out.is_file():
        return out
    base = cache / "rootfs-base.tar"
    if not base.is_file():
        raise FileNotFoundError(f"{base} missing: run tests/e2e/realnode/build.sh")
    text = CONTAINERFILE.read_text()
    build, runtime = stages(text)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        build_root, rootfs = work / "build", work / "rootfs"
        build_root.mkdir()
        rootfs.mkdir()
        build_stage(build, build_root)
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-xf", str(base)], check=True)
        runtime_stage(runtime, build_root, rootfs)
        archive(rootfs, AGENT_TAG, work / "agent.tar", runtime_config(text).as_oci())
        for old in cache.glob("agent-*.tar"):
            old.unlink()
        (work / "agent.tar").rename(out)
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["archive"] and len(argv) == 5:
        archive(Path(argv[1]), argv[2], Path(argv[3]), json.loads(argv[4]))
        return 0
    if argv[:1] == ["agent"] and len(argv) == 2:
        sys.stdout.write(f"{build_agent(Path(argv[1]))}\n")
        return 0
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
