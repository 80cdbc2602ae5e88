"""What the operator commands that talk to Kafka share (`estafette keys|regions|kafka`): the `--kafka`
option, and running one conversation so that Kafka away or a refusal is one red line and an exit
code, never a traceback."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer

T = TypeVar("T")

KAFKA = typer.Option("127.0.0.1:9092", "--kafka", envvar="ESTAFETTE_KAFKA_BOOTSTRAP", help="Kafka bootstrap address.")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(message, err=True, fg="red")
    raise typer.Exit(code)


def run(kafka: str, work: Coroutine[Any, Any, T]) -> T:
    """Run one conversation with Kafka; Kafka away or a refusal is one red line and exit code 1."""
    import asyncio
    import logging

    from aiokafka.errors import KafkaError

    from estafette.tools.kafka_security import KafkaSecurityError, KafkaUnreachable

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # our one line says it
    unreachable = f"cannot reach Kafka at {kafka}; is it running (make run / make infra-up)?"
    try:
        return asyncio.run(work)
    except KafkaUnreachable:
        fail(unreachable, 1)
    except KafkaSecurityError as exc:
        fail(str(exc), 1)
    except (KafkaError, OSError, TimeoutError) as exc:
        fail(unreachable.replace(";", f" ({type(exc).__name__});", 1), 1)
