"""The clock (runtime/clock.py): the real time by default; a test clock (fixed instant, offset, or a
file every process reads) from platform settings; refused in production."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from estafette.runtime.app import Runtime
from estafette.runtime.clock import Clock, TestClockRefused, move_clock_file
from estafette.runtime.settings import ServiceSettings

T0 = datetime(2027, 5, 31, 8, 0, tzinfo=UTC)
_PLATFORM = ("ENVIRONMENT", "FIXED_NOW", "CLOCK_OFFSET_SECONDS", "CLOCK_FILE")


class ShopSettings(ServiceSettings):
    model_config = {"env_prefix": "SHOP_"}
    service_name: str = "shop"


@pytest.fixture(autouse=True)
def _no_platform_clock(monkeypatch):
    for name in _PLATFORM:
        monkeypatch.delenv(f"ESTAFETTE_{name}", raising=False)


def test_without_settings_the_clock_is_the_real_time_aware_in_utc():
    clock = Clock.from_settings(ShopSettings())
    before = datetime.now(UTC)
    now = clock.now()
    assert before <= now <= datetime.now(UTC)
    assert now.utcoffset() == timedelta(0) and not clock.is_test_clock
    assert ShopSettings().environment == "development"


def test_a_fixed_now_and_an_offset_from_the_platform_settings(monkeypatch):
    monkeypatch.setenv("ESTAFETTE_FIXED_NOW", "2027-05-31T10:00:00+02:00")
    monkeypatch.setenv("ESTAFETTE_CLOCK_OFFSET_SECONDS", "86400")
    clock = Clock.from_settings(ShopSettings())
    assert clock.now() == T0 + timedelta(days=1)
    assert clock.now().tzinfo == UTC


def test_an_offset_alone_moves_the_real_time(monkeypatch):
    monkeypatch.setenv("ESTAFETTE_CLOCK_OFFSET_SECONDS", "-3600")
    now = Clock.from_settings(ShopSettings()).now()
    assert now < datetime.now(UTC) - timedelta(minutes=59)


def test_a_fixed_now_without_a_utc_offset_is_refused(monkeypatch):
    monkeypatch.setenv("ESTAFETTE_FIXED_NOW", "2027-05-31T08:00:00")
    with pytest.raises(ValueError, match="UTC offset"):
        Clock.from_settings(ShopSettings())


def test_production_refuses_a_test_clock_at_start_up_and_names_the_setting(monkeypatch):
    monkeypatch.setenv("ESTAFETTE_ENVIRONMENT", "production")
    assert not Runtime(ShopSettings(), migrations=Path(".")).clock.is_test_clock  # no test clock: starts
    monkeypatch.setenv("ESTAFETTE_CLOCK_OFFSET_SECONDS", "60")
    with pytest.raises(TestClockRefused, match="ESTAFETTE_CLOCK_OFFSET_SECONDS.*ESTAFETTE_ENVIRONMENT=production"):
        Runtime(ShopSettings(), migrations=Path("."))


@pytest.mark.parametrize("setting,value", [("FIXED_NOW", "2027-05-31T08:00:00Z"), ("CLOCK_FILE", "/tmp/clock.json")])
def test_production_refuses_every_kind_of_test_clock(monkeypatch, setting, value):
    monkeypatch.setenv("ESTAFETTE_ENVIRONMENT", "production")
    monkeypatch.setenv(f"ESTAFETTE_{setting}", value)
    with pytest.raises(TestClockRefused, match=f"ESTAFETTE_{setting}"):
        Clock.from_settings(ShopSettings())


def test_an_unknown_environment_is_refused(monkeypatch):
    monkeypatch.setenv("ESTAFETTE_ENVIRONMENT", "prod")  # a typo must not pass for "not production"
    with pytest.raises(ValidationError, match="ESTAFETTE_ENVIRONMENT"):
        ShopSettings()


def test_the_runtime_exposes_the_clock_of_its_settings(monkeypatch):
    monkeypatch.setenv("ESTAFETTE_FIXED_NOW", T0.isoformat())
    assert Runtime(ShopSettings(), migrations=Path(".")).clock.now() == T0


def test_the_clock_file_moves_every_reader_without_a_restart(tmp_path, monkeypatch):
    path = tmp_path / "clock.json"
    monkeypatch.setenv("ESTAFETTE_CLOCK_FILE", str(path))
    monkeypatch.setenv("ESTAFETTE_FIXED_NOW", T0.isoformat())
    one, two = Clock.from_settings(ShopSettings()), Clock.from_settings(ShopSettings())  # e.g. two services
    assert one.now() == T0  # no file yet: the settings' clock

    move_clock_file(path, fixed_now=T0, offset_seconds=3600)
    assert one.now() == two.now() == T0 + timedelta(hours=1)
    move_clock_file(path, fixed_now=T0, offset_seconds=7200)  # same size, moved again at once
    assert one.now() == two.now() == T0 + timedelta(hours=2)
    move_clock_file(path, offset_seconds=86400)  # no fixed instant in the file: the real time, moved
    assert one.now() > datetime.now(UTC) + timedelta(hours=23)

    path.unlink()
    assert one.now() == T0


def test_the_clock_file_refuses_a_time_without_utc_offset(tmp_path):
    with pytest.raises(ValueError, match="UTC offset"):
        move_clock_file(tmp_path / "clock.json", fixed_now=datetime(2027, 5, 31, 8, 0))
    (tmp_path / "clock.json").write_text('{"fixed_now": "2027-05-31T08:00:00"}')
    with pytest.raises(ValueError, match="UTC offset"):
        Clock(file=tmp_path / "clock.json").now()


def test_in_process_a_clock_is_moved_directly():
    clock = Clock(fixed_now=datetime(2027, 5, 31, 10, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == T0
    clock.advance(timedelta(minutes=5))
    assert clock.now() == T0 + timedelta(minutes=5)
    clock.set(T0 + timedelta(days=2))
    assert clock.now() == T0 + timedelta(days=2, minutes=5)
