"""The shared runtime: plumbing every service needs, and no domain types.

- `settings`: the pydantic-settings base every service config extends.
- `logging`: structured JSON logs (ids only, never personal data).
- `db`: the connection pool and per-service SQL migrations.
- `uow`: a unit of work = one database transaction with the inbox (dedupe) and the outbox (events out).
- `outbox`: the relay loop that publishes committed outbox rows to Kafka.
- `consumer`: at-least-once Kafka subscribers that hand each new event to a service function.
- `app`: builds a service's ASGI app (FastStream broker, /healthz, /metrics, optional HTTP API).
"""
