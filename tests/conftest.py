import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Infra, start_infra, stop_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """Real Kafka + PostgreSQL + mail sink for this test session (see tests/support.py), stopped at the
    end of the session unless KEEP_INFRA=1 (then the next session reuses PostgreSQL and the mail sink)."""
    yield start_infra()
    if os.environ.get("KEEP_INFRA") != "1":
        stop_infra()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The offline checks of deploy/ (tests/deploy) run last, and their helm binary is built in the
    background from the start (deploy/local/tools.sh: a Go build of about 2.5 minutes the first time,
    reused afterwards; the `helm` fixture waits for it)."""
    deploy = [item for item in items if item.nodeid.startswith("tests/deploy/")]
    if not deploy:
        return
    items[:] = [item for item in items if not item.nodeid.startswith("tests/deploy/")] + deploy
    tools = Path(__file__).resolve().parents[1] / "deploy" / "local" / "tools.sh"
    subprocess.Popen([str(tools), "helm"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
