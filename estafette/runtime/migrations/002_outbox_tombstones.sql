-- A tombstone (a null value on a compacted topic, e.g. a participant's contact details erased) is an
-- outbox row without a payload.
ALTER TABLE outbox ALTER COLUMN payload DROP NOT NULL;
