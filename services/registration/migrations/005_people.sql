-- Issue 11: organisers' tools (people, import, export, recommendations).

-- A sign-up's history: its events with their times, and the organisers' audited acts (a late admission:
-- who, when, why). Never personal data: the sign-up events carry none, the audit rows only ids and reasons.
CREATE TABLE signup_history (
    id          bigserial   PRIMARY KEY,
    signup_id   text        NOT NULL,
    edition_id  text        NOT NULL,
    kind        text        NOT NULL,
    at          timestamptz NOT NULL,
    actor       text,
    reason      text        NOT NULL DEFAULT '',
    details     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX signup_history_by_signup ON signup_history (signup_id, id);

-- Every sign-up event a use case writes to the outbox is written to the history by the same INSERT, so
-- in the same transaction (no use case can forget it; a rolled-back use case leaves no history).
CREATE FUNCTION signup_history_from_outbox() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO signup_history (signup_id, edition_id, kind, at, reason, details)
    VALUES (
        NEW.key, NEW.payload ->> 'edition', NEW.event_type,
        coalesce((NEW.payload ->> 'occurred_at')::timestamptz, now()),
        coalesce(NEW.payload ->> 'reason', ''),
        NEW.payload - ARRAY['region', 'edition', 'event_id', 'occurred_at', 'correlation_id', 'signup_id',
                            'reason', 'event_type', 'version']
    );
    RETURN NULL;
END
$$;
CREATE TRIGGER signup_history_from_outbox AFTER INSERT ON outbox FOR EACH ROW
    WHEN (NEW.event_type IN ('SignupSubmitted', 'SignupChanged', 'SignupApproved', 'SignupRefused', 'SignupWithdrawn'))
    EXECUTE FUNCTION signup_history_from_outbox();

-- The people list: an edition's sign-ups by time and id (the cursor), searched by name or e-mail address.
CREATE INDEX signups_by_edition_time ON signups (edition_id, signed_up_at, id);
CREATE INDEX placements_by_offer ON placements (offer_id) WHERE outcome = 'assigned';
CREATE INDEX feedback_by_offer ON feedback (offer_id);
