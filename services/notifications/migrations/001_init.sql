-- One row per e-mail to send. The row holds what is needed to render and address the message
-- (personal data: name and e-mail address; never logged, never served by the HTTP API).
CREATE TABLE notifications (
    id               uuid        PRIMARY KEY,        -- uuid5 of the source event id, or the request's id
    source_event_id  uuid        NOT NULL UNIQUE,
    kind             text        NOT NULL CHECK (kind IN ('assigned', 'waitlisted', 'unmatched', 'generic')),
    template         text        NOT NULL,           -- the name published in NotificationSent/Failed
    region           text        NOT NULL,
    edition          text        NOT NULL,
    signup_id        text,
    correlation_id   uuid        NOT NULL,
    recipient_name   text        NOT NULL,
    recipient_email  text        NOT NULL,
    language         text        NOT NULL CHECK (language IN ('nl', 'de', 'en')),
    data             jsonb       NOT NULL,           -- template variables besides the recipient
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         int         NOT NULL DEFAULT 0,
    last_error       text,                           -- redacted: no e-mail addresses
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    failed_at        timestamptz
);
-- The sender's queue: due pending messages.
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
-- The organisers' views.
CREATE INDEX notifications_by_edition ON notifications (edition, created_at, id);
CREATE INDEX notifications_by_signup ON notifications (signup_id);
