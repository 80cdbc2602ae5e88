-- Issue 11: webhooks for portals. A region's organiser registers endpoints (URL, event types); every
-- event of those types on the region's topics this service reads (editions, offers, sign-ups, matches;
-- never the participants topic) becomes one delivery per endpoint, recorded in the consumer's
-- transaction (unique per endpoint and event id). A delivery loop POSTs it, signed by the Standard
-- Webhooks scheme, and logs each attempt.
CREATE TABLE webhook_endpoints (
    id           uuid        PRIMARY KEY,
    region       text        NOT NULL,
    url          text        NOT NULL,
    event_types  text[]      NOT NULL,
    description  text        NOT NULL DEFAULT '',
    -- The signing secret (whsec_...): shown once; kept because every delivery is signed with it.
    secret       text        NOT NULL,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    deleted_at   timestamptz
);
CREATE INDEX webhook_endpoints_live ON webhook_endpoints (region) WHERE deleted_at IS NULL;

-- webhook_deliveries.status: pending | delivered | failed (gave up after the last attempt)
CREATE TABLE webhook_deliveries (
    id                uuid        PRIMARY KEY,  -- the webhook-id header (the same for every attempt)
    endpoint_id       uuid        NOT NULL REFERENCES webhook_endpoints (id),
    region            text        NOT NULL,
    event_id          uuid        NOT NULL,
    event_type        text        NOT NULL,
    body              text        NOT NULL,     -- the event's JSON, exactly as sent and signed
    status            text        NOT NULL DEFAULT 'pending',
    attempts          int         NOT NULL DEFAULT 0,  -- every attempt ever (numbers webhook_attempts)
    tries             int         NOT NULL DEFAULT 0,  -- attempts since created or redelivered
    next_attempt_at   timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    delivered_at      timestamptz,
    last_status_code  int,
    last_error        text,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);

-- webhook_attempts.status: succeeded | failed
CREATE TABLE webhook_attempts (
    delivery_id    uuid        NOT NULL REFERENCES webhook_deliveries (id),
    number         int         NOT NULL,
    attempted_at   timestamptz NOT NULL,
    status         text        NOT NULL,
    response_code  int,
    duration_ms    int         NOT NULL,
    error          text,
    PRIMARY KEY (delivery_id, number)
);
