"""Kafka principals and ACLs (SASL/SCRAM-SHA-512): one principal per service, one per regional pipeline.

The ACL table is DERIVED from services/registry.py (each service's `reads` and `writes`), so a new
service or topic is granted what it declares and nothing else:

- a service `s` is the principal `User:s`. In each region (`grant_region`, which `estafette regions
  apply` calls for every region it applies): READ+DESCRIBE on the region's topic of each kind it
  reads, WRITE+DESCRIBE on each it writes (LITERAL names: `estafette.<region>.<kind>.v2`).
  Nationally (`estafette kafka setup`): READ+DESCRIBE on the API keys and the region registry (every
  service reads them whole, without a consumer group), on the national topics it reads, WRITE+DESCRIBE
  on those it writes, and, if it consumes anything, READ on its consumer groups: `s` (every region by
  pattern, national topics) and `s.<region>` (an instance serving some regions), as LITERAL `s` plus
  PREFIXED `s.` (a plain prefix `s` would also cover another principal's groups named `s…`).
- a regional pipeline is the principal `User:pipeline-<region>`: READ+DESCRIBE on the topics PREFIXED
  `estafette.<region>.` and READ on the groups `pipeline-<region>` (LITERAL) and `pipeline-<region>.…`
  (PREFIXED; a plain prefix would let region `noord` into `noord-holland`'s groups) — nothing else: no
  other region's topics, no national topic, no writes, no topic creation. `grant_region` grants it
  with the services'; it can log in once `pipeline_credentials` (`estafette kafka credentials --region
  R`) gave it a password.
- `admin` is the broker's super user (deploy/local/kafka.sh): tools and the platform's operator.

Nobody but admin may create or delete topics. SCRAM users and ACLs are made with Kafka's own admin
client (aiokafka's cannot), through the small Java program deploy/local/kafka/KafkaAdmin.java run
against the broker's jars (see `AdminTool`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from estafette.runtime.kafka import MECHANISM, KafkaAccess
from schemas.topics import API_KEYS, REGION_ID_PATTERN, REGIONS, Topic
from services.registry import SERVICES, ServiceSpec

ROOT = Path(__file__).resolve().parents[2]
KAFKA_DIR = ROOT / "deploy" / "local" / "kafka"
ADMIN_SOURCE = KAFKA_DIR / "KafkaAdmin.java"
ADMIN_LOG_CONFIG = KAFKA_DIR / "admin-log4j2.properties"

TOPIC, GROUP = "TOPIC", "GROUP"
LITERAL, PREFIXED = "LITERAL", "PREFIXED"
READ, WRITE, DESCRIBE = "READ", "WRITE", "DESCRIBE"

#: National topics every service reads whole (no consumer group): the API keys, the region registry.
EVERY_SERVICE_READS: tuple[Topic, ...] = (API_KEYS, REGIONS)
PIPELINE_PREFIX = "pipeline-"


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding: `principal` may `operation` the resource (`resource_type`, `pattern`, `name`)."""

    principal: str
    resource_type: str
    pattern: str
    name: str
    operation: str
    permission: str = "ALLOW"
    host: str = "*"

    def as_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Acl:
        return cls(**{k: str(data[k]) for k in ("principal", "resource_type", "pattern", "name", "operation",
                                                 "permission", "host")})

    def __str__(self) -> str:
        pattern = "" if self.pattern == LITERAL else f" ({self.pattern.lower()})"
        return f"{self.principal:<24} {self.permission} {self.operation:<8} {self.resource_type.lower()} {self.name}{pattern}"


class KafkaSecurityError(RuntimeError):
    """Users or ACLs could not be changed; the message says why in one line."""


class KafkaUnreachable(KafkaSecurityError):
    """The broker did not answer."""


# --- the ACL table (pure) ---------------------------------------------------------------------
def user(principal: str) -> str:
    return f"User:{principal}"


def pipeline_user(region: str) -> str:
    """The SCRAM user name of `region`'s pipeline (ValueError for a name that is no region id)."""
    _check_region(region)
    return f"{PIPELINE_PREFIX}{region}"


def topic_prefix(region: str) -> str:
    """Every topic of `region` (and of no other region) starts with this."""
    _check_region(region)
    return f"estafette.{region}."


def _check_region(region: str) -> None:
    if not re.fullmatch(REGION_ID_PATTERN, region):
        raise ValueError(f"{region!r} is not a region id ({REGION_ID_PATTERN})")


def _topic_acls(principal: str, name: str, operation: str, pattern: str = LITERAL) -> list[Acl]:
    return [Acl(principal, TOPIC, pattern, name, op) for op in (operation, DESCRIBE)]


def service_region_acls(spec: ServiceSpec, region: str) -> list[Acl]:
    """What service `spec` may do with `region`'s topics: read those it reads, write those it writes."""
    principal = user(spec.name)
    acls = [acl for t in spec.reads if t.regional for acl in _topic_acls(principal, t.name_in(region), READ)]
    acls += [acl for t in spec.writes if t.regional for acl in _topic_acls(principal, t.name_in(region), WRITE)]
    return acls


def service_national_acls(spec: ServiceSpec) -> list[Acl]:
    """What service `spec` may do beyond the regions' topics: its consumer groups, the topics every
    service reads whole, the national topics it reads and writes."""
    principal = user(spec.name)
    acls: list[Acl] = []
    if spec.reads:  # it consumes: groups `name` and `name.<region>`
        acls += [Acl(principal, GROUP, LITERAL, spec.name, READ), Acl(principal, GROUP, PREFIXED, f"{spec.name}.", READ)]
    national_reads = list(EVERY_SERVICE_READS) + [t for t in spec.reads if not t.regional and t not in EVERY_SERVICE_READS]
    acls += [acl for t in national_reads for acl in _topic_acls(principal, t.name, READ)]
    acls += [acl for t in spec.writes if not t.regional for acl in _topic_acls(principal, t.name, WRITE)]
    return acls


def region_acls(region: str, services: Iterable[ServiceSpec] = SERVICES) -> list[Acl]:
    """Every service's bindings on `region`'s topics (`grant_region` creates them, and `pipeline_acls`)."""
    _check_region(region)
    return sorted({acl for spec in services for acl in service_region_acls(spec, region)})


def national_acls(services: Iterable[ServiceSpec] = SERVICES) -> list[Acl]:
    """Every service's bindings beyond the regions (what `estafette kafka setup` creates)."""
    return sorted({acl for spec in services for acl in service_national_acls(spec)})


def pipeline_acls(region: str) -> list[Acl]:
    """Region `region`'s pipeline: read the region's topics (by prefix), in its own consumer groups."""
    name = pipeline_user(region)
    principal = user(name)
    return sorted({
        *_topic_acls(principal, topic_prefix(region), READ, PREFIXED),
        Acl(principal, GROUP, LITERAL, name, READ),
        Acl(principal, GROUP, PREFIXED, f"{name}.", READ),
    })


# --- the admin program ------------------------------------------------------------------------
def _state_dir() -> Path:
    return Path(os.environ.get("ESTAFETTE_STATE_DIR") or ROOT / ".local")


def _pom_sum() -> str:
    return hashlib.sha256((KAFKA_DIR / "pom.xml").read_bytes()).hexdigest()


def _stamp(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@dataclass(frozen=True)
class AdminTool:
    """KafkaAdmin.java compiled against a complete set of the broker's jars (deploy/local/kafka.sh
    install gathers them). The jars are the same in every state dir made from the same pom, so the
    state dir's own (ESTAFETTE_STATE_DIR, default <repo>/.local) is preferred but any other of this
    checkout serves too (a test session's, say); ESTAFETTE_KAFKA_LIB names one explicitly. The program
    is built beside the jars (`<state>/kafka/admin/kafka-admin.jar`, stamped with the source's and the
    jars' checksums) when no current build is there, and its first run leaves a class-data-sharing
    archive that halves the start-up of the later ones."""

    lib: Path
    home: Path

    JAR = "kafka-admin.jar"

    @staticmethod
    def find_lib(bootstrap: str | None = None) -> Path:
        """The jars: ESTAFETTE_KAFKA_LIB, ESTAFETTE_STATE_DIR's, those of the local broker listening on
        `bootstrap`'s port, <repo>/.local's, any other of this checkout (those of the current pom first)."""
        candidates: list[Path] = []
        if explicit := os.environ.get("ESTAFETTE_KAFKA_LIB"):
            candidates.append(Path(explicit))
        if os.environ.get("ESTAFETTE_STATE_DIR"):
            candidates.append(_state_dir() / "kafka" / "lib")
        local = ROOT / ".local"
        others = [local / "kafka" / "lib", *sorted(local.glob("*/kafka/lib"))]
        if bootstrap:
            port = bootstrap.split(",")[0].rpartition(":")[2]
            listening = re.compile(rf"^listeners=\w+://127\.0\.0\.1:{re.escape(port)},", re.M)
            candidates += [lib for lib in others if listening.search(_stamp(lib.parent / "server.properties") or "")]
        candidates += others
        complete = [c for c in candidates if _stamp(c / ".complete")]
        current = [c for c in complete if _stamp(c / ".complete") == _pom_sum()]
        if not (current or complete):
            raise KafkaSecurityError("no Kafka jars found: run deploy/local/kafka.sh install (or set ESTAFETTE_KAFKA_LIB)")
        return (current or complete)[0]

    @classmethod
    def locate(cls, lib: Path | None = None, bootstrap: str | None = None) -> AdminTool:
        """The tool built against `lib` (default: `find_lib(bootstrap)`), compiled first if needed."""
        lib = lib or cls.find_lib(bootstrap)
        tool = cls(lib, lib.parent / "admin")
        if _stamp(tool.home / ".complete") != tool.wanted_stamp():
            tool.compile()
        return tool

    @property
    def jar(self) -> Path:
        return self.home / self.JAR

    def wanted_stamp(self) -> str:
        source = hashlib.sha256(ADMIN_SOURCE.read_bytes()).hexdigest()
        return f"{source} {_stamp(self.lib / '.complete')}"

    def compile(self) -> None:
        if shutil.which("javac") is None:
            raise KafkaSecurityError("javac not found: install a JDK 17+ (Debian: openjdk-17-jdk-headless)")
        self.home.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="admin.tmp.", dir=self.home.parent))
        try:
            done = subprocess.run(
                ["javac", "-nowarn", "-encoding", "UTF-8", "-d", str(tmp / "classes"), "-cp", f"{self.lib}/*", str(ADMIN_SOURCE)],
                capture_output=True, text=True,
            )
            if done.returncode != 0:
                raise KafkaSecurityError(f"compiling {ADMIN_SOURCE.name} failed: {done.stderr.strip()[-500:]}")
            with zipfile.ZipFile(tmp / self.JAR, "w") as jar:  # a directory on the class path rules out CDS
                for item in sorted((tmp / "classes").rglob("*.class")):
                    jar.write(item, item.relative_to(tmp / "classes").as_posix())
            shutil.rmtree(tmp / "classes")
            (tmp / ".complete").write_text(self.wanted_stamp() + "\n")
            shutil.rmtree(self.home, ignore_errors=True)
            try:
                tmp.rename(self.home)
            except OSError:  # another process put its (equal) build there a moment ago
                if _stamp(self.home / ".complete") != self.wanted_stamp():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _archive(self) -> Path:
        """The class-data-sharing archive: bound to the JDK build and the jars."""
        java = shutil.which("java")
        release = Path(os.path.realpath(java)).parents[1] / "release" if java else None
        jdk = release.read_bytes() if release and release.is_file() else b""
        return self.home / f"admin-{hashlib.sha256(jdk + self.wanted_stamp().encode()).hexdigest()[:12]}.jsa"

    def command(self) -> tuple[list[str], Path | None]:
        """The command line, and where its run dumps a new archive (to be adopted once it exited well)."""
        archive = self._archive()
        if archive.is_file():
            cds, dump = [f"-XX:SharedArchiveFile={archive}"], None
        else:
            dump = archive.with_name(f"{archive.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            cds = [f"-XX:ArchiveClassesAtExit={dump}"]
        return [
            "java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m", *cds, "-Xlog:disable", "-Xlog:all=error:stderr",
            f"-Dlog4j2.configurationFile={ADMIN_LOG_CONFIG}", "-cp", f"{self.jar}{os.pathsep}{self.lib}/*", "KafkaAdmin",
        ], dump

    def adopt(self, dump: Path | None, ok: bool) -> None:
        if dump is None:
            return
        if ok and dump.is_file() and dump.stat().st_size > 0:
            dump.replace(self._archive())
        else:
            dump.unlink(missing_ok=True)


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def client_properties(kafka: KafkaAccess) -> dict[str, str]:
    """Kafka client properties (as Java clients and Kafka's tools take them) of `kafka`'s principal."""
    props = {"bootstrap.servers": kafka.bootstrap}
    if kafka.secured:
        props |= {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": MECHANISM,
            "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f"username={_jaas_quote(kafka.username)} password={_jaas_quote(kafka.password)};",
        }
    return props


_UNREACHABLE = {"TimeoutException", "DisconnectException", "NetworkException"}


async def admin(kafka: KafkaAccess, operations: Sequence[Mapping[str, Any]], timeout: float = 60) -> list[dict[str, Any]]:
    """Run `operations` (see KafkaAdmin.java) as `kafka`'s principal; their results, in order.
    KafkaUnreachable if the broker does not answer, KafkaSecurityError for any refusal."""
    await _reachable(kafka.bootstrap)
    tool = await asyncio.to_thread(AdminTool.locate, None, kafka.bootstrap)
    request = json.dumps({"connection": client_properties(kafka) | {"default.api.timeout.ms": "15000"},
                          "operations": list(operations)}).encode()
    command, dump = tool.command()
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise KafkaSecurityError("java not found: install a JDK 17+ (Debian: openjdk-17-jdk-headless)") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(request), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        tool.adopt(dump, ok=False)
        raise KafkaUnreachable(f"no answer from Kafka at {kafka.bootstrap} within {timeout:.0f} s") from None
    tool.adopt(dump, ok=proc.returncode == 0)
    try:
        answer = json.loads(out)
    except ValueError:
        raise KafkaSecurityError(f"the admin program failed (exit {proc.returncode}): {err.decode(errors='replace').strip()[-500:]}") from None
    if "error" in answer:
        raise KafkaSecurityError(f"the admin program refused the request: {answer.get('message')}")
    results: list[dict[str, Any]] = answer["results"]
    for result in results:
        if not result.get("ok"):
            error, message = result.get("error", ""), result.get("message", "")
            if error in _UNREACHABLE:
                raise KafkaUnreachable(f"Kafka at {kafka.bootstrap} did not answer ({error})")
            if "Authentication" in error:
                raise KafkaSecurityError(f"Kafka at {kafka.bootstrap} refused {kafka.username or 'us'}: {message}")
            raise KafkaSecurityError(f"{result.get('op')}: {error}: {message}")
    return results


async def _reachable(bootstrap: str, timeout: float = 5) -> None:
    """KafkaUnreachable at once when no bootstrap server takes a connection (Kafka's admin client
    would keep trying for its whole API timeout)."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]") or "127.0.0.1", int(port)), timeout)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        return
    raise KafkaUnreachable(f"nothing answers at {bootstrap}")


def _require_secured(kafka: KafkaAccess) -> None:
    if not kafka.secured:
        raise KafkaSecurityError(
            "no admin password: set ESTAFETTE_KAFKA_PASSWORD (the local broker's is in <state>/kafka/credentials.env)"
        )


# --- operations -------------------------------------------------------------------------------
async def grant_region(kafka: KafkaAccess, region: str) -> None:
    """Grant each service its access to `region`'s topics, and the region's pipeline its own (it can
    log in once `pipeline_credentials` gave it a password). Idempotent; nothing to do on a broker
    without security."""
    if not kafka.secured:
        return
    bindings = region_acls(region) + pipeline_acls(region)
    await admin(kafka, [{"op": "create-acls", "bindings": [a.as_json() for a in bindings]}])


async def revoke_region(kafka: KafkaAccess, region: str) -> int:
    """Remove every binding of `region` (the services' on its topics, its pipeline's) and the
    pipeline's user, for a region taken out of the registry; the number of bindings removed."""
    if not kafka.secured:
        return 0
    bindings = region_acls(region) + pipeline_acls(region)
    (deleted,) = await admin(kafka, [{"op": "delete-acls", "filters": [a.as_json() for a in bindings]}])
    try:
        await admin(kafka, [{"op": "delete-scram", "user": pipeline_user(region)}])
    except KafkaSecurityError as exc:  # it never had credentials
        if "ResourceNotFound" not in str(exc):
            raise
    return int(deleted.get("deleted", 0))


async def pipeline_credentials(kafka: KafkaAccess, region: str) -> tuple[str, str]:
    """Create or rotate `region`'s pipeline principal: a new random password (the old one stops
    working) and its ACLs. Returns (username, password)."""
    _require_secured(kafka)
    name = pipeline_user(region)
    password = secrets.token_urlsafe(32)
    await admin(kafka, [
        {"op": "upsert-scram", "user": name, "password": password},
        {"op": "create-acls", "bindings": [a.as_json() for a in pipeline_acls(region)]},
    ])
    await until_login(KafkaAccess(kafka.bootstrap, name, password))
    return name, password


async def until_login(access: KafkaAccess, timeout: float = 15) -> None:
    """Wait until the broker accepts `access`'s new password (the controller commits a credential
    a moment before the broker applies it): credentials handed out work at once."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed

    host, _, port = access.bootstrap.split(",")[0].rpartition(":")
    kwargs = {k: v for k, v in access.client_kwargs().items() if k != "bootstrap_servers"}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await create_conn(host, int(port), request_timeout_ms=10_000, **kwargs)
        except SaslAuthenticationFailed:
            if asyncio.get_running_loop().time() > deadline:
                raise KafkaSecurityError(f"Kafka at {access.bootstrap} does not accept {access.username}'s new password") from None
            await asyncio.sleep(0.05)
            continue
        conn.close()
        return


async def upsert_users(kafka: KafkaAccess, passwords: Mapping[str, str]) -> None:
    """Give each principal of `passwords` its SCRAM-SHA-512 credential (created or replaced)."""
    _require_secured(kafka)
    if passwords:
        await admin(kafka, [{"op": "upsert-scram", "user": n, "password": p} for n, p in sorted(passwords.items())])


async def setup(kafka: KafkaAccess, passwords: Mapping[str, str], services: Sequence[ServiceSpec] = SERVICES) -> dict[str, Any]:
    """What a new broker needs before regions are applied: every service's SCRAM user (with its
    password from `passwords`), the national topics, the services' national ACLs."""
    from estafette.tools.topics import ensure_topics, national_specs

    _require_secured(kafka)
    missing = [s.name for s in services if not passwords.get(s.name)]
    if missing:
        raise KafkaSecurityError(f"no password for {', '.join(missing)} (deploy/local/kafka.sh start makes them)")
    created = await ensure_topics(kafka, national_specs())
    acls = national_acls(services)
    await admin(kafka, [
        *({"op": "upsert-scram", "user": s.name, "password": passwords[s.name]} for s in services),
        {"op": "create-acls", "bindings": [a.as_json() for a in acls]},
    ])
    return {"users": [s.name for s in services], "topics_created": created, "acls": len(acls)}


async def describe_acls(kafka: KafkaAccess, principal: str | None = None) -> list[Acl]:
    """Every binding on the broker (of `principal`, e.g. `User:matching` or just `matching`)."""
    _require_secured(kafka)
    if principal and ":" not in principal:
        principal = user(principal)
    (result,) = await admin(kafka, [{"op": "describe-acls", "filter": {"principal": principal}}])
    return sorted(Acl.from_json(b) for b in result["bindings"])


async def describe_users(kafka: KafkaAccess) -> dict[str, list[str]]:
    """Every SCRAM user and its mechanisms."""
    _require_secured(kafka)
    (result,) = await admin(kafka, [{"op": "describe-scram"}])
    return dict(result["users"])


if __name__ == "__main__":  # deploy/local/kafka.sh: `python -m estafette.tools.kafka_security build LIB` prints the jar
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "build":
        sys.exit("usage: python -m estafette.tools.kafka_security build LIB")
    try:
        print(AdminTool.locate(Path(sys.argv[2])).jar)
    except KafkaSecurityError as exc:
        sys.exit(str(exc))
