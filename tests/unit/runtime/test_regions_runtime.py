"""The runtime's regions: which consumer groups an instance joins, tombstones in the consumer, the
registry kept from its compacted topic, and the Kafka principal in the settings."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from estafette.runtime.app import Runtime
from estafette.runtime.consumer import BatchConsumer, ConsumerMetrics
from estafette.runtime.regions import RegionBook
from estafette.runtime.kafka import KafkaAccess
from estafette.runtime.settings import ServiceSettings
from prometheus_client import CollectorRegistry
from schemas import ParticipantRegistered
from schemas.regions import RegionNames, RegionRecord
from schemas.topics import EDITIONS, PARTICIPANTS, RELAY, SIGNUPS
from tests.unit.fakes import FakeRecord, FakeUnitOfWork


class ShopSettings(ServiceSettings):
    model_config = {"env_prefix": "SHOP_"}
    service_name: str = "shop"


def runtime(regions: str = "") -> Runtime:
    rt = Runtime(ShopSettings(regions=regions), migrations=Path("."))
    noop = {}
    rt.subscribe(EDITIONS, "editions", noop)
    rt.subscribe(SIGNUPS, "signups", noop)
    return rt


def test_an_instance_for_every_region_joins_one_group_by_pattern():
    groups = runtime().consumer_groups()
    assert list(groups) == ["shop"]
    (pattern,) = groups["shop"]
    import re

    assert re.match(pattern, "estafette.region-added-later.signups.v2")
    assert not re.match(pattern, "estafette.twente.participants.v2")


def test_an_instance_for_some_regions_joins_one_group_per_region_and_names_only_their_topics():
    rt = runtime("friesland,groningen")
    assert rt.consumer_groups() == {
        "shop.friesland": ["estafette.friesland.editions.v2", "estafette.friesland.signups.v2"],
        "shop.groningen": ["estafette.groningen.editions.v2", "estafette.groningen.signups.v2"],
    }


def test_national_topics_stay_in_the_services_own_group():
    rt = runtime("twente")
    rt.subscribe(RELAY, "relay", {})
    assert rt.consumer_groups()["shop"] == ["estafette.relay.v2"]


def test_a_region_id_that_cannot_name_topics_is_refused_at_start():
    with pytest.raises(ValidationError, match="not a region id"):
        ShopSettings(regions="twente,Fries Land")


def test_the_kafka_principal_is_the_service_unless_named_and_plaintext_without_password():
    assert ShopSettings().kafka == KafkaAccess("127.0.0.1:9092", "shop", "")
    assert not ShopSettings().kafka.secured
    secured = ShopSettings(kafka_password="pw", kafka_username="shop-eu").kafka
    assert secured.client_kwargs()["sasl_plain_username"] == "shop-eu"
    assert secured.client_kwargs()["sasl_mechanism"] == "SCRAM-SHA-512"
    assert "pw" not in repr(secured)




@dataclass
class Calls:
    events: list = field(default_factory=list)
    erased: list = field(default_factory=list)


async def test_a_tombstone_reaches_the_erase_handler_in_the_same_transaction_as_the_events():
    calls = Calls()
    uow = FakeUnitOfWork(Calls())

    async def handle(tx, event):
        calls.events.append(event.signup_id)

    async def erase(tx, key):
        calls.erased.append(key)

    consumer = BatchConsumer("shop.participants", handle, uow, ShopSettings(), ConsumerMetrics(CollectorRegistry()), erase)
    person = ParticipantRegistered(region="twente", edition="e", signup_id="s-1", name="A", email="a@example.org")
    topic = PARTICIPANTS.name_in("twente")
    await consumer.handle([FakeRecord(topic, person.model_dump_json().encode(), b"s-1"), FakeRecord(topic, None, b"s-2", offset=1)])
    assert calls.events == ["s-1"] and calls.erased == ["s-2"]
    assert uow.commits == 1


def test_the_region_book_keeps_the_latest_record_and_forgets_a_removed_region():
    book = RegionBook(KafkaAccess("unused:9092"))
    names = RegionNames(nl="Twente", de="Twente", en="Twente")
    book.apply(b"twente", RegionRecord(id="twente", names=names).model_dump_json().encode())
    book.apply(b"twente", RegionRecord(id="twente", names=names, partitions=8).model_dump_json().encode())
    book.apply(b"broken", b"{not json")
    assert "twente" in book and book.get("twente").partitions == 8 and "broken" not in book
    book.apply(b"twente", None)
    assert "twente" not in book


async def test_records_are_applied_in_offset_order_so_a_registration_after_a_tombstone_stays():
    order: list[str] = []
    uow = FakeUnitOfWork(Calls())

    async def handle(tx, event):
        order.append(f"registered {event.signup_id}")

    async def erase(tx, key):
        order.append(f"erased {key}")

    consumer = BatchConsumer("shop.participants", handle, uow, ShopSettings(), ConsumerMetrics(CollectorRegistry()), erase)
    topic = PARTICIPANTS.name_in("twente")
    first = ParticipantRegistered(region="twente", edition="e", signup_id="s-1", name="A", email="a@example.org")
    again = ParticipantRegistered(region="twente", edition="e", signup_id="s-1", name="A", email="a2@example.org")
    await consumer.handle([FakeRecord(topic, first.model_dump_json().encode(), b"s-1", offset=0),
                           FakeRecord(topic, None, b"s-1", offset=1),
                           FakeRecord(topic, again.model_dump_json().encode(), b"s-1", offset=2)])
    assert order == ["registered s-1", "erased s-1", "registered s-1"]
