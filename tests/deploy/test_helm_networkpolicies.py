"""The chart's NetworkPolicies allow only the listed flows: every rule names its peers and ports
(no empty `from`/`to`, no rule without ports, no 0.0.0.0/0), every policy has a pod selector and
both directions, and every Deployment (and the Jobs) is covered. Each instance may reach DNS, Kafka,
its database and, for notifications only, the SMTP server and the values' webhook endpoints; it may
be reached only on its HTTP port."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import THREE_REGIONS, Render, of_kind
from .test_helm_chart import VALUES


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels") or {}
    return bool(match) and match.items() <= labels.items()


def check_policy(policy: dict[str, Any]) -> None:
    name, spec = policy["metadata"]["name"], policy["spec"]
    assert spec.get("podSelector", {}).get("matchLabels"), f"{name}: no pod selector (would select every pod)"
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"], name
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for rule in spec.get(direction) or []:
            peers = rule.get(peers_key)
            assert peers, f"{name}: a {direction} rule without `{peers_key}` allows every peer"
            assert rule.get("ports"), f"{name}: a {direction} rule without ports allows every port"
            for peer in peers:
                assert peer, f"{name}: an empty peer allows everything"
                if "ipBlock" in peer:
                    assert peer["ipBlock"]["cidr"] not in {"0.0.0.0/0", "::/0"}, name
                for key in ("namespaceSelector", "podSelector"):
                    if key in peer:
                        assert peer[key].get("matchLabels") or peer[key].get("matchExpressions"), (
                            f"{name}: an empty {key} selects everything")


@pytest.mark.parametrize("name", list(VALUES))
def test_every_policy_allows_only_listed_flows(render: Render, name: str) -> None:
    docs = render(VALUES[name])
    policies = of_kind(docs, "NetworkPolicy")
    assert policies
    for policy in policies:
        check_policy(policy)
    for workload in of_kind(docs, "Deployment") + of_kind(docs, "Job"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        assert len(covering) == 1, f"{workload['metadata']['name']}: {len(covering)} policies"


def test_the_check_rejects_allow_all() -> None:
    allow_all = {"metadata": {"name": "x"}, "spec": {"podSelector": {"matchLabels": {"a": "b"}},
                 "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": []}}
    with pytest.raises(AssertionError):
        check_policy(allow_all)


def _egress_ports(policy: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}


def test_who_may_reach_what(render: Render) -> None:
    docs = render(THREE_REGIONS)
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    for policy in of_kind(docs, "NetworkPolicy"):
        name = policy["metadata"]["name"]
        if name not in deployments:  # the Jobs': DNS and Kafka only, no ingress
            assert policy["spec"]["ingress"] == [] and _egress_ports(policy) == {53, 9092}
            continue
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        http = container["ports"][0]["containerPort"]
        (ingress,) = policy["spec"]["ingress"]
        assert [p["port"] for p in ingress["ports"]] == [http]
        assert {"kubernetes.io/metadata.name": "monitoring"} in [
            p.get("namespaceSelector", {}).get("matchLabels") for p in ingress["from"]]
        if container["args"][1] == "notifications":
            assert _egress_ports(policy) == {53, 9092, 5432, 587, 443}
        else:
            assert _egress_ports(policy) == {53, 9092, 5432}
