"""Static checks of deploy/compose.yaml (issue 12), offline: no Docker engine here.

- The file is valid against the compose specification's JSON schema (the copy check-jsonschema vendors).
- Every service built from deploy/Dockerfile has a healthcheck (the services': /healthz), builds a stage
  the Dockerfile has, and waits for what it needs (depends_on with conditions: Postgres healthy, the
  Kafka setup completed, the mail sink healthy for the service that sends mail).
- Each of the four services of services/registry.py runs as `serve <name>` with the environment
  `make run` gives it: the names estafette/tools/devserver.py adds (derived by calling it, not copied)
  are all there, and every other name is a setting that service really reads.
- Passwords: only interpolations `${VAR:-local-only-...}`, each variable with one default everywhere;
  Postgres and the Kafka setup get the same ones the services use; every principal and role of the
  registry has one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import check_jsonschema
import jsonschema
import pytest
import yaml
from pydantic import AliasChoices

from estafette.tools import devserver
from services.registry import NAMES, service

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SCHEMA = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|API_KEY|CREDENTIAL", re.I)
INTERPOLATION = re.compile(r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def built_from_dockerfile() -> dict[str, dict[str, Any]]:
    """The compose services whose image is built from deploy/Dockerfile."""
    out = {}
    for name, spec in SERVICES.items():
        build = spec.get("build")
        if isinstance(build, dict):
            context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
            if (context / build.get("dockerfile", "Dockerfile")).resolve() == ROOT / "deploy" / "Dockerfile":
                out[name] = spec
    return out


def serving() -> dict[str, dict[str, Any]]:
    """Registry service name -> the compose service that runs `estafette serve <name>`."""
    out = {}
    for spec in SERVICES.values():
        command = spec.get("command") or []
        if command[:1] == ["serve"]:
            out[command[1]] = spec
    return out


def dockerfile_stages() -> set[str]:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I))


def setting_names(name: str) -> set[str]:
    """Every environment variable the settings of service `name` read (upper case)."""
    cls = type(service(name).settings())
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for field, info in cls.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices):
            names |= {str(c).upper() for c in info.validation_alias.choices}
        else:
            names.add(f"{prefix}{field}".upper())
    return names


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.fixture()
def make_run_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """Per service, the variables `make run` (devserver.service_env) adds to the environment, with
    every password file present as after `kafka.sh start` and `postgres.sh bootstrap`."""
    (tmp_path / "pg").mkdir()
    (tmp_path / "kafka").mkdir()
    (tmp_path / "pg" / "passwords.env").write_text("".join(f"{n.upper()}_DATABASE_PASSWORD=x\n" for n in NAMES))
    (tmp_path / "kafka" / "credentials.env").write_text(
        "".join(f"{n.upper()}_KAFKA_PASSWORD=x\n" for n in ("admin", *NAMES))
    )
    monkeypatch.setattr(devserver, "STATE", tmp_path)
    for key in list(os.environ):
        if key.split("_", 1)[0].lower() in NAMES:
            monkeypatch.delenv(key)
    return {name: set(devserver.service_env(name)) - set(os.environ) for name in NAMES}


def test_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_every_service_of_the_registry_runs_from_the_image() -> None:
    assert set(serving()) == set(NAMES)
    built = built_from_dockerfile()
    for name, spec in serving().items():
        assert spec in built.values(), f"{name}: not built from deploy/Dockerfile"
        settings = type(service(name).settings())
        published = {p.rsplit(":", 1)[0] for p in spec.get("ports", [])}
        # make run's addresses: the service's default port on this machine, and only on 127.0.0.1
        assert published == {f"127.0.0.1:{settings.model_fields['http_port'].default}"}, (name, published)


def test_services_built_from_the_dockerfile_have_healthchecks_and_targets() -> None:
    built = built_from_dockerfile()
    assert len(built) >= len(NAMES)
    stages = dockerfile_stages()
    for name, spec in built.items():
        assert spec["build"].get("target") in stages, f"{name}: build target not a stage of deploy/Dockerfile"
        if spec["build"]["target"] == "kafka-setup":
            continue  # a one-shot: others wait for it to complete
        test = " ".join(spec.get("healthcheck", {}).get("test", []))
        assert "urlopen" in test and "127.0.0.1" in test, f"{name}: no healthcheck"
    for name, spec in serving().items():
        assert "/healthz" in " ".join(spec["healthcheck"]["test"]) and ":8000/" in " ".join(spec["healthcheck"]["test"]), name


def test_depends_on_waits_for_what_each_service_needs() -> None:
    for name, spec in serving().items():
        needs = spec.get("depends_on", {})
        assert needs.get("postgres", {}).get("condition") == "service_healthy", name
        assert needs.get("kafka-setup", {}).get("condition") == "service_completed_successfully", name
        sends_mail = "smtp_host" in type(service(name).settings()).model_fields
        mail = needs.get("mailsink", {}).get("condition")
        assert (mail == "service_healthy") == sends_mail, f"{name}: mailsink dependency {mail!r}"
    for name, spec in SERVICES.items():
        for target, condition in spec.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health, which has no check"
    assert SERVICES["kafka-setup"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_environment_is_what_make_run_sets(make_run_names: dict[str, set[str]]) -> None:
    for name, spec in serving().items():
        env = set(spec.get("environment", {}))
        wanted = make_run_names[name]
        assert wanted, f"devserver.service_env adds nothing for {name}?"
        assert wanted <= env, f"{name}: make run sets {sorted(wanted - env)}, compose does not"
        unknown = env - setting_names(name)
        assert not unknown, f"{name}: {sorted(unknown)} are no settings of {name}"


def test_passwords_are_local_only_defaults_and_agree_everywhere() -> None:
    defaults: dict[str, set[str]] = {}
    for text in strings(COMPOSE):
        for m in INTERPOLATION.finditer(text):
            defaults.setdefault(m["var"], set()).add(m["default"] or "")
    secret_vars = {var for var in defaults if SECRET.search(var)}
    assert secret_vars
    for var in secret_vars:
        assert len(defaults[var]) == 1, f"${{{var}}} has different defaults: {defaults[var]}"
        (default,) = defaults[var]
        assert default.startswith("local-only-"), f"${{{var}}}: default {default!r} is not clearly local-only"
    # every secret-looking variable and every URL with a password is an interpolation, never a literal
    for name, spec in SERVICES.items():
        env = spec.get("environment", {})
        for key, value in env.items():
            value = str(value)
            if SECRET.search(key):
                assert INTERPOLATION.fullmatch(value), f"{name}: {key} is a literal; use ${{VAR:-local-only-...}}"
            if "://" in value and (password := urlsplit(INTERPOLATION.sub("VAR", value)).password) is not None:
                assert password == "VAR", f"{name}: {key} holds a literal password"


def test_credentials_line_up_between_the_pieces() -> None:
    """The Kafka setup creates each service's SCRAM user with the password that service logs in with;
    Postgres creates each service's role with the password its URL carries."""
    setup_env = SERVICES["kafka-setup"]["environment"]
    pg_env = SERVICES["postgres"]["environment"]
    assert pg_env["ESTAFETTE_SERVICES"].split() == list(NAMES)
    db = pg_env["POSTGRES_DB"]
    assert setup_env["ESTAFETTE_KAFKA_USERNAME"] == "admin"
    assert setup_env["ESTAFETTE_KAFKA_PASSWORD"] == SERVICES["kafka"]["environment"]["ADMIN_KAFKA_PASSWORD"]
    for name, spec in serving().items():
        env = spec["environment"]
        key = f"{name.upper()}_KAFKA_PASSWORD"
        assert env[key] == setup_env[key], key
        assert env[f"{name.upper()}_KAFKA_BOOTSTRAP"] == setup_env["ESTAFETTE_KAFKA_BOOTSTRAP"]
        url = urlsplit(env[f"{name.upper()}_DATABASE_URL"].replace(pg_env[f"{name.upper()}_DATABASE_PASSWORD"], "PW"))
        assert (url.scheme, url.username, url.password, url.hostname, url.path) == ("postgresql", name, "PW", "postgres", f"/{db}")


def test_kafka_release_and_mounted_files() -> None:
    pom = (ROOT / "deploy" / "local" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert version
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{version.group(1)}", "the broker of make run and compose: one release"
    assert f"apache/kafka:{version.group(1)}" in (ROOT / "deploy" / "Dockerfile").read_text(), "the admin program's jars"
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).is_file(), f"{name}: {source} does not exist"
