-- Contract v2 (regions): match events no longer carry a recipient. A participant's contact details come
-- only from the region's compacted participants topic (ParticipantRegistered, erased by a tombstone),
-- are kept here until erased, and are looked up when a message is sent.

-- One row per sign-up whose contact details arrived (personal data: never logged, never served).
CREATE TABLE contacts (
    signup_id      text        PRIMARY KEY,
    region         text        NOT NULL,
    edition        text        NOT NULL,
    name           text        NOT NULL,
    email          text        NOT NULL,
    language       text        NOT NULL CHECK (language IN ('nl', 'de', 'en')),
    registered_at  timestamptz NOT NULL DEFAULT now()   -- the last ParticipantRegistered
);

-- Sign-ups whose contact details were erased (a tombstone): only the id, so that a match event that
-- arrives after the erasure fails at once instead of waiting for a contact that will never come.
CREATE TABLE erased_participants (
    signup_id  text        PRIMARY KEY,
    erased_at  timestamptz NOT NULL DEFAULT now()
);

-- A participant's message has no recipient of its own (looked up in `contacts` when it is sent), and
-- erasure clears the recipient columns of older rows; only a requested message (no sign-up) keeps one.
ALTER TABLE notifications ALTER COLUMN recipient_name DROP NOT NULL;
ALTER TABLE notifications ALTER COLUMN recipient_email DROP NOT NULL;
-- Unknown while the message awaits the participant's contact.
ALTER TABLE notifications ALTER COLUMN language DROP NOT NULL;
ALTER TABLE notifications ADD CONSTRAINT notifications_addressable
    CHECK (signup_id IS NOT NULL OR recipient_email IS NOT NULL);

-- A participant's message waits for their contact details in `awaiting_contact`.
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('awaiting_contact', 'pending', 'sent', 'failed'));

-- The sender of an instance that serves some regions looks only at their due messages.
CREATE INDEX notifications_due_by_region ON notifications (region, next_attempt_at) WHERE status = 'pending';
