"""Fixtures of the offline checks of deploy/: the pinned helm binary and the chart's renderings.

`helm` comes from deploy/local/tools.sh (built from the Go module proxy on first use, cached under
.local/tools/); a build that fails fails the tests, it never skips them. Renderings are cached per
session: each values combination is rendered once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "estafette"
THREE_REGIONS = CHART / "ci" / "three-regions.yaml"
TOOLS = ROOT / "deploy" / "local" / "tools.sh"
#: The Kubernetes version the chart is rendered for and validated against (kubernetes-validate's schemas).
KUBE_VERSION = "1.33.0"

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm binary (built by deploy/local/tools.sh when missing: a few minutes, once)."""
    done = subprocess.run([str(TOOLS), "helm"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"deploy/local/tools.sh helm failed:\n{done.stderr[-3000:]}"
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file(), f"tools.sh printed {path}, which does not exist"
    return path


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """render(values_file=None, *--set pairs) -> the rendered documents (dicts), cached per arguments."""
    cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def _render(values: Path | None = None, *sets: str) -> list[dict[str, Any]]:
        key = (values, sets)
        if key not in cache:
            args = ["template", "est", str(CHART), "--namespace", "estafette", "--kube-version", KUBE_VERSION]
            if values is not None:
                args += ["-f", str(values)]
            for item in sets:
                args += ["--set", item]
            done = run_helm(helm, *args)
            assert done.returncode == 0, f"helm {' '.join(args)} failed:\n{done.stderr}"
            cache[key] = [d for d in yaml.safe_load_all(done.stdout) if d]
        return cache[key]

    return _render


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]
