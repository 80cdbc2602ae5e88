"""Checks of the dashboard and the alert rules (issue 12): deploy/grafana/estafette.json and
deploy/prometheus/alerts.yaml, offline.

- Every metric a PromQL expression names (dashboard panels, alert rules) is one the code really
  exposes: the catalogue is read from the source (each prometheus_client Counter/Gauge/Histogram/
  Summary made in estafette/ and services/, with the sample names prometheus_client gives them) plus
  the metrics of FastStream's Kafka middleware the runtime installs, so a renamed metric fails here.
  The one exception is consumer lag, which no service measures: it is the Kafka exporter's
  `kafka_consumergroup_lag` (Strimzi's Kafka Exporter; KEDA scales on the same lag), listed in
  EXTERNAL. Label matchers name labels the metric has; the consumer groups matched are the services'.
- The dashboard: no published JSON schema of Grafana dashboards is obtainable from the registries
  reachable here (Grafana's own schemas live in its AGPL repository; the foundation SDK's packages ship
  none and its from_json does not validate), so a JSON schema of the fields Grafana needs to import it
  (DASHBOARD_SCHEMA) plus unique panel ids, a 24-column grid and the panels the issue asks for.
- `promtool check rules` passes, and a promtool rules test (written here) shows the outbox and
  dead-letter alerts fire when they should and stay quiet otherwise. promtool comes from
  deploy/local/promtool.sh (cached under .local/tools/).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "estafette.json"
ALERTS_FILE = ROOT / "deploy" / "prometheus" / "alerts.yaml"
PROMTOOL_SCRIPT = ROOT / "deploy" / "local" / "promtool.sh"

#: Metrics no service exposes, with where they come from.
EXTERNAL = {"kafka_consumergroup_lag": "Kafka exporter (Strimzi Kafka CR spec.kafkaExporter), per group/topic/partition"}
#: Labels every scraped series has besides its own.
TARGET_LABELS = {"job", "instance"}
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


# --- the catalogue of exposed metrics ------------------------------------------------------------
def _literal(node: ast.AST, scope: dict[str, ast.AST]) -> Any:
    """A constant list of label names, following a local name and `*name` once; None if not constant."""
    if isinstance(node, ast.Name) and node.id in scope:
        return _literal(scope[node.id], {})
    if isinstance(node, ast.List | ast.Tuple):
        out: list[str] = []
        for item in node.elts:
            value = _literal(item.value, scope) if isinstance(item, ast.Starred) else _literal(item, scope)
            if value is None:
                return None
            out += value if isinstance(item, ast.Starred) else [value]
        return out
    if isinstance(node, ast.Constant):
        return node.value
    return None


def _code_metrics() -> Iterator[tuple[str, str, tuple[str, ...] | None, str]]:
    """(name, type, label names or None, where) of every prometheus_client metric the code makes."""
    for path in sorted([*(ROOT / "estafette").rglob("*.py"), *(ROOT / "services").rglob("*.py")]):
        tree = ast.parse(path.read_text())
        kinds = {
            alias.asname or alias.name: alias.name.lower()
            for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client"
            for alias in node.names if alias.name in {"Counter", "Gauge", "Histogram", "Summary"}
        }
        if not kinds:
            continue
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
                continue
            scope = {t.id: n.value for n in ast.walk(func) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
            for call in ast.walk(func):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in kinds):
                    continue
                args = {kw.arg: kw.value for kw in call.keywords}
                name = call.args[0] if call.args else args.get("name")
                if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                    continue
                label_node = call.args[2] if len(call.args) > 2 else args.get("labelnames")
                labels = _literal(label_node, scope) if label_node is not None else []
                yield name.value, kinds[call.func.id], tuple(labels) if labels is not None else None, f"{path.relative_to(ROOT)}:{call.lineno}"


def _faststream_metrics() -> Iterator[tuple[str, str, None, str]]:
    """The metrics of FastStream's Kafka middleware, which the runtime puts on every service's broker."""
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware

    assert "KafkaPrometheusMiddleware(registry=self.registry" in (ROOT / "estafette/runtime/app.py").read_text()
    registry = CollectorRegistry()
    KafkaPrometheusMiddleware(registry=registry, app_name="estafette")
    for family in registry.collect():
        yield family.name, family.type, None, "faststream KafkaPrometheusMiddleware"


def exposed() -> dict[str, tuple[tuple[str, ...] | None, str]]:
    """Sample name -> (label names or None if not known statically, where it is made)."""
    out: dict[str, tuple[tuple[str, ...] | None, str]] = {}
    for name, kind, labels, where in [*_code_metrics(), *_faststream_metrics()]:
        base = name.removesuffix("_total") if kind == "counter" else name
        for suffix in SUFFIXES[kind]:
            out[base + suffix] = (None if labels is None else tuple(labels) + (("le",) if suffix == "_bucket" else ()), where)
    return out


EXPOSED = exposed()


# --- PromQL ---------------------------------------------------------------------------------
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords, labels or durations)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\(?)", text):
        if not m.group(2) and m.group(1) not in _KEYWORDS:
            names.add(m.group(1))
    return names


def selectors(expr: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(metric, {label: matched value}) of every selector with label matchers."""
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}", expr):
        yield m.group(1), dict(re.findall(r'(\w+)\s*(?:=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(2)))


DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
ALERTS: dict[str, Any] = yaml.safe_load(ALERTS_FILE.read_text())
RULES = [rule for group in ALERTS["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in DASHBOARD["panels"] for t in p.get("targets", [])]


def all_exprs() -> list[tuple[str, str]]:
    return dashboard_exprs() + [(r["alert"], r["expr"]) for r in RULES]


def test_the_catalogue_is_read_from_the_code() -> None:
    """A guard on the catalogue itself: it knows the metrics the issue's panels and alerts are about."""
    for name in ("registration_accepted_total", "match_assignments_published_total", "emails_sent_total",
                 "emails_failed_total", "outbox_oldest_unpublished_seconds", "dead_letters_total",
                 "match_run_seconds_bucket", "faststream_received_messages_total"):
        assert name in EXPOSED, name
    assert EXPOSED["emails_failed_total"][0] == ("template", "language", "permanent")
    assert not set(EXTERNAL) & set(EXPOSED), "an external metric is now exposed by the code: drop it from EXTERNAL"


@pytest.mark.parametrize(("where", "expr"), all_exprs())
def test_every_metric_named_is_exposed(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = names - set(EXPOSED) - set(EXTERNAL)
    assert not unknown, f"{where}: {sorted(unknown)} are exposed by no service (see /metrics)"
    for metric, matchers in selectors(expr):
        labels = EXPOSED.get(metric, (None, ""))[0]
        if labels is not None:
            assert set(matchers) <= set(labels) | TARGET_LABELS, f"{where}: {metric} has no label {set(matchers) - set(labels)}"


def test_label_values_exist() -> None:
    """The values the expressions match: the sign-up route's name, match run statuses, the consumer groups."""
    api = (ROOT / "services" / "registration" / "api.py").read_text()
    statuses = set(re.findall(r'runs\.labels\(run\.kind, "(\w+)"\)', (ROOT / "services/matching/service.py").read_text()))
    consuming = sorted(s.name for s in SERVICES if s.reads)
    seen_groups = 0
    for where, expr in all_exprs():
        for metric, matchers in selectors(expr):
            if metric == "registration_accepted_total" and "action" in matchers:
                route = matchers["action"]
                assert re.search(rf'@api\.post\("/editions/{{edition_id}}/signups"[^\n]*\n\s*async def {route}\(', api), (
                    f"{where}: action={route!r} is not the name of registration's sign-up route"
                )
            if metric == "match_runs_total" and "status" in matchers:
                assert matchers["status"] in statuses, f"{where}: match runs are never {matchers['status']!r}"
            if "consumergroup" in matchers:
                seen_groups += 1
                alternation = re.match(r"^\(([\w|]+)\)", matchers["consumergroup"])
                assert alternation and sorted(alternation.group(1).split("|")) == consuming, (
                    f"{where}: consumer groups {matchers['consumergroup']!r}; the consuming services are {consuming}"
                )
                pattern = re.compile(matchers["consumergroup"].replace("\\\\", "\\"))
                for group in (*consuming, f"{consuming[0]}.twente"):
                    assert pattern.fullmatch(group), f"{where}: misses group {group}"
                assert not pattern.fullmatch("pipeline-twente")
    assert seen_groups >= 2, "the dashboard and the lag alert select the services' consumer groups"


# --- the dashboard --------------------------------------------------------------------------
_GRID = {"type": "object", "required": ["x", "y", "w", "h"],
         "properties": {k: {"type": "integer", "minimum": 0} for k in ("x", "y", "w", "h")}}
_TARGET = {"type": "object", "required": ["refId", "expr"],
           "properties": {"refId": {"type": "string", "pattern": "^[A-Z]$"}, "expr": {"type": "string", "minLength": 1},
                          "legendFormat": {"type": "string"}, "datasource": {"$ref": "#/$defs/datasource"}}}
DASHBOARD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "time", "templating"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "tags": {"type": "array", "items": {"type": "string"}},
        "refresh": {"type": "string"},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "required": ["list"],
                       "properties": {"list": {"type": "array", "items": {"type": "object", "required": ["name", "type"]}}}},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "type", "title", "gridPos"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "type": {"enum": ["row", "timeseries", "stat", "gauge", "table", "bargauge", "text"]},
                "title": {"type": "string", "minLength": 1},
                "gridPos": _GRID,
                "datasource": {"$ref": "#/$defs/datasource"},
                "targets": {"type": "array", "items": _TARGET},
            },
            "if": {"properties": {"type": {"not": {"enum": ["row", "text"]}}}},
            "then": {"required": ["datasource", "targets"], "properties": {"targets": {"minItems": 1}}},
        }},
    },
    "$defs": {"datasource": {"type": "object", "required": ["type", "uid"],
                             "properties": {"type": {"const": "prometheus"}, "uid": {"const": "${datasource}"}}}},
}


def test_dashboard_matches_the_schema_of_an_importable_dashboard() -> None:
    jsonschema.Draft202012Validator.check_schema(DASHBOARD_SCHEMA)
    errors = list(jsonschema.Draft202012Validator(DASHBOARD_SCHEMA).iter_errors(DASHBOARD))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"


def test_dashboard_panels_fit_and_cover_the_issue() -> None:
    panels = DASHBOARD["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"{p['title']}: wider than the 24-column grid"
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"{p['title']}: overlaps another panel"
        cells |= area
        refs = [t["refId"] for t in p.get("targets", [])]
        assert len(refs) == len(set(refs)), p["title"]
    used = {name for _, expr in dashboard_exprs() for name in metric_names(expr)}
    wanted = {
        "sign-ups": "registration_accepted_total", "matches": "match_assignments_published_total",
        "e-mails sent": "emails_sent_total", "e-mails failed": "emails_failed_total",
        "outbox age": "outbox_oldest_unpublished_seconds", "consumer lag": "kafka_consumergroup_lag",
        "dead letters": "dead_letters_total",
    }
    missing = {what for what, metric in wanted.items() if metric not in used}
    assert not missing, f"the dashboard shows no {', '.join(sorted(missing))}"
    dead = [p for p in panels if any("dead_letters_total" in t["expr"] for t in p.get("targets", []))]
    assert any("by (job" in t["expr"] for p in dead for t in p["targets"]), "dead letters per service"


# --- the alert rules ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def promtool() -> Path:
    done = subprocess.run([str(PROMTOOL_SCRIPT), "install"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"deploy/local/promtool.sh install failed:\n{done.stderr[-2000:]}"
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file(), path
    return path


def test_alerts_cover_the_issue() -> None:
    by_metric = {name: r["alert"] for r in RULES for name in metric_names(r["expr"])}
    for metric in ("outbox_oldest_unpublished_seconds", "dead_letters_total", "emails_failed_total", "kafka_consumergroup_lag"):
        assert metric in by_metric, f"no alert on {metric}"
    for rule in RULES:
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_promtool_check_rules(promtool: Path) -> None:
    done = subprocess.run([str(promtool), "check", "rules", str(ALERTS_FILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in done.stdout


def expected(alert: str, labels: dict[str, str], value: str) -> dict[str, Any]:
    """An alert as promtool's rule tests expect it: its labels and its annotations rendered (the rule's
    own templates with `labels` and the value as Prometheus prints it)."""
    rule = next(r for r in RULES if r["alert"] == alert)

    def render(text: str) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
        return re.sub(r"\{\{ \$value[^}]*\}\}", value, text)

    return {"exp_labels": {**labels, **rule["labels"]},
            "exp_annotations": {k: render(v) for k, v in rule["annotations"].items()}}


def test_alerts_fire_when_they_should(promtool: Path, tmp_path: Path) -> None:
    """promtool's rule unit tests: series over time, and the alerts expected at given moments."""
    tests = {
        "rule_files": [str(ALERTS_FILE)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # registration's outbox stuck from minute 2; matching's drains normally
                    {"series": 'outbox_oldest_unpublished_seconds{job="registration"}', "values": "0 0 60+60x20"},
                    {"series": 'outbox_oldest_unpublished_seconds{job="matching"}', "values": "0 1 0 2 0 1 0 0 0 0 0 0 0 0 0"},
                    # one record dead-lettered at minute 5 by matching's sign-up consumer
                    {"series": 'dead_letters_total{job="matching",consumer="matching.signups"}', "values": "0 0 0 0 0 1 1 1 1 1"},
                    {"series": 'emails_failed_total{job="notifications",template="match_result",language="nl",permanent="true"}',
                     "values": "0 0 0 2 2 2"},
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "EstafetteOutboxStale", "exp_alerts": []},
                    {"eval_time": "10m", "alertname": "EstafetteOutboxStale",
                     "exp_alerts": [expected("EstafetteOutboxStale", {"job": "registration"}, "9m 0s")]},
                    {"eval_time": "4m", "alertname": "EstafetteDeadLetters", "exp_alerts": []},
                    {"eval_time": "6m", "alertname": "EstafetteDeadLetters",
                     "exp_alerts": [expected("EstafetteDeadLetters", {"job": "matching", "consumer": "matching.signups"}, "")]},
                    {"eval_time": "4m", "alertname": "EstafetteEmailsFailing",
                     "exp_alerts": [expected("EstafetteEmailsFailing", {"job": "notifications", "template": "match_result"}, "2")]},
                ],
            },
        ],
    }
    test_file = tmp_path / "alerts.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run([str(promtool), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
