import os
from collections.abc import Iterator

import pytest

from tests.support import Infra, start_infra, stop_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """Real Kafka + PostgreSQL + mail sink for this test session (see tests/support.py), stopped at the
    end of the session unless KEEP_INFRA=1 (then the next session reuses PostgreSQL and the mail sink)."""
    yield start_infra()
    if os.environ.get("KEEP_INFRA") != "1":
        stop_infra()
