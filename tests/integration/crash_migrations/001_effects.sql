-- Deliberately NOT idempotent: every handled event appends a row. Only the inbox prevents doubles.
CREATE TABLE effect_log (
    seq       bigserial PRIMARY KEY,
    event_id  uuid      NOT NULL,
    payload   text      NOT NULL
);
