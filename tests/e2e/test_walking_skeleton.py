"""The platform as users drive it: four services as processes, real Kafka, Postgres and SMTP.

An organiser opens an edition and publishes offers, employees sign up (in Dutch, German and English),
the organiser runs the match; every assigned participant finds exactly one e-mail in their language,
and reporting shows the right figures.
"""

from __future__ import annotations

import uuid
import httpx
import pytest

from tests.support import SERVICES, Infra, eventually, services

pytestmark = pytest.mark.e2e

OFFERS = [  # id suffix, host organisation, capacity
    ("bakery", "org-bakery", 2),
    ("townhall", "org-townhall", 2),
    ("hospital", "org-hospital", 1),
]
PEOPLE = [  # organisation, language, choices (offer suffixes)
    ("org-townhall", "nl", ["bakery", "hospital"]),
    ("org-bakery", "de", ["townhall", "hospital"]),
    ("org-hospital", "en", ["bakery", "townhall"]),
    ("org-school", "nl", ["hospital", "bakery"]),
    ("org-school", "de", ["hospital", "townhall"]),
    ("org-school", "en", ["hospital"]),
    ("org-garage", "nl", ["bakery"]),
]
WORDS = {"nl": "Beste", "de": "Guten Tag", "en": "Dear"}


def test_signup_to_email_and_report(infra: Infra) -> None:
    edition = f"e2e-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}  # the organiser's portal (sign-ups are public)
    with services(infra, *SERVICES) as svc:
        reg, matching, reporting = (svc[s].url for s in ("registration", "matching", "reporting"))
        r = httpx.post(f"{reg}/editions", headers=admin, json={"id": edition, "region": "twente", "name": "Week van de Uitwisseling", "signup_deadline": "2099-04-01T00:00:00Z", "starts_on": "2099-05-31", "ends_on": "2099-06-04", "languages": ["nl", "de", "en"]})
        assert r.status_code == 201, r.text
        for suffix, host, cap in OFFERS:
            body = {"id": f"{edition}-{suffix}", "host_org": host, "title": f"Een dag bij {suffix}", "date": "2099-06-01", "capacity": cap, "location": "Enschede"}
            assert httpx.post(f"{reg}/editions/{edition}/offers", headers=admin, json=body).status_code == 201
        emails = {}
        for i, (org, lang, picks) in enumerate(PEOPLE):
            email = f"person{i}-{edition}@example.org"
            body = {"org": org, "name": f"Person {i}", "email": email, "language": lang, "choices": [f"{edition}-{p}" for p in picks], "consent": True}
            r = httpx.post(f"{reg}/editions/{edition}/signups", json=body)
            assert r.status_code == 201, r.text
            emails[r.json()["signup_id"]] = (email, lang)

        def received() -> bool:
            r = httpx.get(f"{matching}/editions/{edition}", headers=admin)
            return r.status_code == 200 and (r.json()["offers"], r.json()["participants"]) == (len(OFFERS), len(PEOPLE))

        eventually(received, timeout=60)
        run = httpx.post(f"{matching}/editions/{edition}/match-runs", headers=admin)
        assert run.status_code == 202, run.text
        run_id = run.json()["id"]
        done = eventually(lambda: (s := httpx.get(f"{matching}/match-runs/{run_id}", headers=admin).json())["status"] not in ("queued", "running") and s, timeout=60)
        assert done["status"] == "done" and done["assigned"] == 5  # 5 seats; the optimum fills them all
        assigned = {a["signup_id"] for a in httpx.get(f"{matching}/editions/{edition}/assignments", headers=admin).json()["assignments"]}
        assert len(assigned) == 5

        # Every assigned participant gets exactly one assignment e-mail, in their own language (and,
        # before it, the confirmation of their sign-up).
        def mails_for(sid: str, kind: str) -> list[dict]:
            found = httpx.get(f"{infra.mail_api}/api/messages", params={"to": emails[sid][0]}).json()
            return [m for m in found if m["headers"].get("X-Estafette-Kind") == kind]

        def assignment_mails() -> dict[str, list[dict]] | None:
            found = {sid: mails_for(sid, "assigned") for sid in assigned}
            return found if all(found.values()) else None

        found = eventually(assignment_mails, timeout=60)
        for sid, messages in found.items():
            email, lang = emails[sid]
            assert len(messages) == 1, (sid, [m["subject"] for m in messages])
            assert messages[0]["headers"]["Content-Language"] == lang
            assert WORDS[lang] in messages[0]["text"]
        # The others are told they wait (one message each), never that they were placed.
        for sid in set(emails) - assigned:
            waiting = eventually(lambda sid=sid: mails_for(sid, "waitlisted"), timeout=30)
            assert len(waiting) == 1 and not mails_for(sid, "assigned")

        def report() -> dict | None:
            r = httpx.get(f"{reporting}/reports/editions/{edition}", headers=admin)
            if r.status_code != 200:
                return None
            body = r.json()
            return body if body["emails_sent"] == 2 * len(PEOPLE) else None  # confirmation + outcome each

        figures = eventually(report, timeout=60)
        assert (figures["offers"], figures["signups"], figures["assigned"]) == (len(OFFERS), len(PEOPLE), 5)
        regions = httpx.get(f"{reporting}/reports/regions", headers=admin).json()
        assert any(r.get("region") == "twente" for r in regions["regions"]), regions
