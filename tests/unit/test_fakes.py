"""The fake unit of work behaves like the real one where the service tests rely on it."""

import pytest

from schemas import SignupWithdrawn
from tests.unit.fakes import FakeUnitOfWork


class Repo:
    def __init__(self) -> None:
        self.rows: dict[str, str] = {}


def withdrawn(signup_id: str) -> SignupWithdrawn:
    return SignupWithdrawn(region="twente", edition="tw-2027", signup_id=signup_id)


async def test_a_committed_transaction_keeps_its_state_and_publishes():
    uow = FakeUnitOfWork(Repo())
    async with uow.transaction() as tx:
        tx.repo.rows["a"] = "x"
        tx.publish(withdrawn("s-1"))
    assert uow.repo.rows == {"a": "x"} and [e.signup_id for e in uow.of_type(SignupWithdrawn)] == ["s-1"]
    assert (uow.commits, uow.rollbacks) == (1, 0)


async def test_a_failed_transaction_is_rolled_back_with_its_events():
    uow = FakeUnitOfWork(Repo())
    uow.repo.rows["kept"] = "1"
    with pytest.raises(RuntimeError):
        async with uow.transaction() as tx:
            tx.repo.rows["lost"] = "2"
            tx.publish(withdrawn("s-2"))
            raise RuntimeError("refused")
    assert uow.repo.rows == {"kept": "1"} and uow.published == []
    assert (uow.commits, uow.rollbacks) == (0, 1)


async def test_claim_dedupes_like_the_inbox():
    uow = FakeUnitOfWork(Repo())
    event = withdrawn("s-3")
    async with uow.transaction() as tx:
        assert await tx.claim("c", [event, event]) == [event]
    async with uow.transaction() as tx:
        assert await tx.claim("c", [event]) == []
        assert await tx.claim("other", [event]) == [event]
