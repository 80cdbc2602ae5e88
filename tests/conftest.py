import pytest

from tests.support import Infra, start_infra


@pytest.fixture(scope="session")
def infra() -> Infra:
    """Real Kafka + PostgreSQL + mail sink for this test session (see tests/support.py)."""
    return start_infra()
