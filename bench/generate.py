"""Deterministic synthetic Estafette editions for the matching benchmark and tests.

An edition looks like a real exchange week:

* organisations of 6-8 signed-up employees each;
* offers hosted by a subset of the organisations, spread over the five days of one week;
* popularity is skewed: each host gets a Zipf-like weight, so a few hosts are far more wanted
  than the rest, and every participant picks `choices` distinct offers by weight, never at
  their own organisation;
* some participants are only available on some days, some offers cap participants per
  organisation (`max_per_org`), a few participants want two visits (`max_visits` = 2);
* sign-up times spread over a month at minute resolution, so ties in time occur and are
  broken by id.

`generate(participants, offers, seed)` returns the INSTANCE document as a dict (see
services/matching/instance.py); the same arguments always give the same document.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

WEEK = [dt.date(2027, 5, 31) + dt.timedelta(days=d) for d in range(5)]


@dataclass(frozen=True)
class Scale:
    name: str
    participants: int
    offers: int


SCALES = {
    "region": Scale("region", 1_900, 120),
    "national": Scale("national", 50_000, 3_000),
    "stress": Scale("stress", 500_000, 20_000),
}


def generate(
    participants: int,
    offers: int,
    seed: int = 1,
    *,
    choices: int = 5,
    capacity_ratio: float = 1.1,
    zipf_exponent: float = 1.0,
    restricted_share: float = 0.2,
    org_cap_share: float = 0.3,
    two_visit_share: float = 0.03,
) -> dict:
    """Build one edition; `capacity_ratio` is total offer capacity / participants."""
    rng = np.random.default_rng(seed)

    # Organisations of 6-8 participants; participant k belongs to org_of[k].
    sizes = rng.integers(6, 9, size=participants // 6 + 1)
    org_of = np.repeat(np.arange(len(sizes)), sizes)[:participants]
    n_orgs = int(org_of[-1]) + 1 if participants else 1

    # Hosts: about one organisation in four hosts offers (at least one host, never more
    # hosts than offers). Host popularity is Zipf-like in a random host order.
    n_hosts = max(1, min(offers, n_orgs // 4 or 1))
    hosts = rng.choice(n_orgs, size=n_hosts, replace=False)
    host_weight = 1.0 / np.arange(1, n_hosts + 1) ** zipf_exponent
    offer_host_slot = np.concatenate([np.arange(n_hosts), rng.integers(0, n_hosts, offers - n_hosts)])[:offers]
    offer_host = hosts[offer_host_slot]
    offer_weight = host_weight[offer_host_slot] * rng.uniform(0.5, 1.5, size=offers)
    offer_weight /= offer_weight.sum()
    offer_day = rng.integers(0, len(WEEK), size=offers)

    # Capacities around the mean needed for `capacity_ratio`, popular or not.
    mean_capacity = max(1.0, capacity_ratio * participants / max(offers, 1))
    capacity = np.maximum(1, rng.normal(mean_capacity, mean_capacity / 3, size=offers).round()).astype(int)
    has_org_cap = rng.random(offers) < org_cap_share
    org_cap = rng.integers(2, 4, size=offers)

    offer_docs = []
    for j in range(offers):
        doc = {
            "id": f"o-{j + 1}",
            "host": f"org-{offer_host[j] + 1}",
            "date": WEEK[offer_day[j]].isoformat(),
            "capacity": int(capacity[j]),
        }
        if has_org_cap[j]:
            doc["max_per_org"] = int(org_cap[j])
        offer_docs.append(doc)

    # Choices: draw weighted candidates in bulk, keep the first `choices` distinct ones
    # not hosted by the participant's own organisation; redraw for the rare short rows.
    k = min(choices, offers)
    draw = 3 * k + 4
    candidates = rng.choice(offers, size=(participants, draw), p=offer_weight).tolist()
    start = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.timezone.utc)
    minutes = np.sort(rng.integers(0, 30 * 24 * 60, size=participants)).tolist()
    restricted = (rng.random(participants) < restricted_share).tolist()
    day_order = np.argsort(rng.random((participants, len(WEEK))), axis=1).tolist()
    n_days = rng.integers(2, 5, size=participants).tolist()
    two_visits = (rng.random(participants) < two_visit_share).tolist()
    host_of = offer_host.tolist()
    week = [d.isoformat() for d in WEEK]

    participant_docs = []
    for i, own in enumerate(org_of.tolist()):
        picked: list[int] = []
        row = candidates[i]
        for _attempt in range(20):  # bounded: e.g. almost every offer at the own organisation
            for j in row:
                if host_of[j] != own and j not in picked:
                    picked.append(j)
                    if len(picked) == k:
                        break
            if len(picked) == k:
                break
            row = rng.choice(offers, size=draw, p=offer_weight).tolist()
        doc = {
            "id": f"p-{i + 1}",
            "org": f"org-{own + 1}",
            "signed_up_at": (start + dt.timedelta(minutes=minutes[i])).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "choices": [f"o-{j + 1}" for j in picked],
        }
        if restricted[i]:
            doc["available"] = [week[d] for d in sorted(day_order[i][: n_days[i]])]
        if two_visits[i]:
            doc["max_visits"] = 2
        participant_docs.append(doc)

    return {"edition": f"synthetic-{participants}-{offers}-s{seed}", "offers": offer_docs, "participants": participant_docs}
