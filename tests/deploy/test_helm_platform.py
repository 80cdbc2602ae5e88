"""The chart's committed platform data (deploy/helm/estafette/files/platform.yaml) is what
estafette/tools/chart.py derives from the registry and kafka_security today: a new topic, service or
ACL rule without `estafette chart generate` fails here."""

from __future__ import annotations

from pathlib import Path

from estafette.tools import chart


def test_committed_platform_file_is_up_to_date() -> None:
    assert chart.generate(check=True), (
        f"{chart.PLATFORM_FILE.relative_to(chart.ROOT)} differs from the code: run `estafette chart generate`"
    )


def test_the_check_notices_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "platform.yaml"
    stale.write_text(chart.render().replace("estafette.{region}.signups.v2", "estafette.{region}.sign-ups.v2"))
    assert not chart.generate(check=True, path=stale)
    assert chart.generate(path=stale) is False and chart.generate(check=True, path=stale)
