-- Scheduled steps (runtime/scheduler.py): time-based work a service owns (a reminder, a feedback
-- request, a seat offer's expiry), written in the same transaction as the change that calls for it.
-- One row per (kind, key): scheduling again moves the due time, never adds a second row.
CREATE TABLE scheduled_steps (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL,
    key         text        NOT NULL,
    -- when the step is due (on the service's clock, runtime/clock.py)
    due_at      timestamptz NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- set in the transaction that ran the step's handler: done exactly once
    done_at     timestamptz,
    -- failed attempts so far, the last one's error, and when to try again (back-off)
    attempts    int         NOT NULL DEFAULT 0,
    last_error  text,
    retry_at    timestamptz,
    -- set when the step gave up after its last allowed attempt (never run again unless rescheduled)
    failed_at   timestamptz,
    UNIQUE (kind, key)
);
CREATE INDEX scheduled_steps_pending ON scheduled_steps ((coalesce(retry_at, due_at)))
    WHERE done_at IS NULL AND failed_at IS NULL;
