-- The Kafka `correlation_id` header carries the event's correlation id (the request, or the sign-up,
-- that caused it), not the event id. NULL for rows written before this column existed and for raw
-- messages (dead letters): the relay then falls back to the event id.
ALTER TABLE outbox ADD COLUMN correlation_id uuid;
