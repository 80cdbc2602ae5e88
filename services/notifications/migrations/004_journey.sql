-- Issue 9, the journey: every e-mail of a participant's and a host's journey. This service keeps its
-- own copy of the region's editions, offers (with their host contact), sign-ups and visits (who is
-- placed where), and schedules reminders, visitor lists and feedback requests (runtime table
-- scheduled_steps).

-- The kinds of message (services/notifications/domain.py Kind).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'signup_confirmed', 'assigned', 'waitlisted', 'unmatched', 'seat_offered', 'reminder', 'offer_changed',
    'offer_cancelled', 'edition_cancelled', 'feedback_request', 'approval_refused',
    'visitor_list', 'visitor_withdrew', 'host_edition_cancelled',
    'generic', 'approval_requested'
));
-- One event may tell several people (an offer changed: everyone placed there), so the source event no
-- longer identifies a message: the id does (uuid5 of the event id and the sign-up or offer id, or of
-- the scheduled step's kind, key and due time).
ALTER TABLE notifications DROP CONSTRAINT notifications_source_event_id_key;
CREATE INDEX notifications_by_source_event ON notifications (source_event_id);

-- What a host's visitor list shows of a participant (personal data: erased with the contact).
ALTER TABLE contacts ADD COLUMN org text;
ALTER TABLE contacts ADD COLUMN learning_goal text NOT NULL DEFAULT '';

CREATE TABLE editions (
    edition          text        PRIMARY KEY,
    region           text        NOT NULL,
    name             text        NOT NULL,
    starts_on        date,
    ends_on          date,
    signup_deadline  timestamptz,
    languages        jsonb       NOT NULL DEFAULT '[]',
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'cancelled')),
    reason           text        NOT NULL DEFAULT ''
);

-- details: the offer as messages show it (domain.Offer.data()); host_contact: {name, email, language}
-- of the host's work contact, or null.
CREATE TABLE offers (
    offer_id      text        PRIMARY KEY,
    region        text        NOT NULL,
    edition       text        NOT NULL,
    details       jsonb       NOT NULL,
    host_contact  jsonb,
    sequence      int         NOT NULL DEFAULT 0,
    status        text        NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'cancelled')),
    reason        text        NOT NULL DEFAULT ''
);
CREATE INDEX offers_by_edition ON offers (edition);

-- Sign-ups without personal data (the contact is in `contacts`).
CREATE TABLE signups (
    signup_id  text  PRIMARY KEY,
    region     text  NOT NULL,
    edition    text  NOT NULL,
    org        text  NOT NULL,
    language   text  NOT NULL,
    choices    jsonb NOT NULL DEFAULT '[]',
    status     text  NOT NULL DEFAULT 'submitted' CHECK (status IN ('submitted', 'withdrawn', 'refused')),
    approval   text  NOT NULL DEFAULT 'not_required'
               CHECK (approval IN ('not_required', 'pending', 'approved', 'refused'))
);
CREATE INDEX signups_by_edition ON signups (edition);

-- Who is placed where (current), who holds an open seat offer on an offer (seat_offered), and visits
-- that ended (withdrawn, refused, offer or edition cancelled).
CREATE TABLE visits (
    signup_id       text        NOT NULL,
    offer_id        text        NOT NULL,
    region          text        NOT NULL,
    edition         text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('seat_offered', 'current', 'ended')),
    expires_at      timestamptz,
    correlation_id  uuid,
    PRIMARY KEY (signup_id, offer_id)
);
CREATE INDEX visits_by_offer ON visits (offer_id) WHERE status <> 'ended';
CREATE INDEX visits_by_edition ON visits (edition) WHERE status <> 'ended';
