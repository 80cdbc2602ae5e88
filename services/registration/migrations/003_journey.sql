-- Issue 9, the participant's and host's journey.
-- Editions: themes, employer approval, a match run at the deadline; an edition can be cancelled.
ALTER TABLE editions ADD COLUMN themes text[] NOT NULL DEFAULT '{}';
ALTER TABLE editions ADD COLUMN requires_approval boolean NOT NULL DEFAULT false;
ALTER TABLE editions ADD COLUMN match_at_deadline boolean NOT NULL DEFAULT false;
ALTER TABLE editions DROP CONSTRAINT editions_status_check;
ALTER TABLE editions ADD CONSTRAINT editions_status_check CHECK (status IN ('open', 'closed', 'cancelled'));

-- Offers: themes, on site or online, part of the day and local times, join link, what to bring, the
-- host contact (a work contact, never published but on the offers topic) and the version (sequence).
ALTER TABLE offers ADD COLUMN themes text[] NOT NULL DEFAULT '{}';
ALTER TABLE offers ADD COLUMN attendance text NOT NULL DEFAULT 'on_site' CHECK (attendance IN ('on_site', 'online'));
ALTER TABLE offers ADD COLUMN part_of_day text NOT NULL DEFAULT 'whole_day'
    CHECK (part_of_day IN ('morning', 'afternoon', 'whole_day'));
ALTER TABLE offers ADD COLUMN starts_at time;
ALTER TABLE offers ADD COLUMN ends_at time;
ALTER TABLE offers ADD COLUMN join_url text;
ALTER TABLE offers ADD COLUMN what_to_bring text NOT NULL DEFAULT '';
ALTER TABLE offers ADD COLUMN host_contact jsonb;
ALTER TABLE offers ADD COLUMN sequence int NOT NULL DEFAULT 0;

-- Sign-ups: learning goal, consent, the employer's approval; a refused sign-up has ended.
ALTER TABLE signups ADD COLUMN learning_goal text NOT NULL DEFAULT '';
ALTER TABLE signups ADD COLUMN consented_at timestamptz;
ALTER TABLE signups ADD COLUMN approval text NOT NULL DEFAULT 'not_required'
    CHECK (approval IN ('not_required', 'pending', 'approved', 'refused'));
ALTER TABLE signups DROP CONSTRAINT signups_status_check;
ALTER TABLE signups ADD CONSTRAINT signups_status_check CHECK (status IN ('submitted', 'withdrawn', 'refused'));

-- Participating organisations of an edition, with the contact who approves their employees' sign-ups.
CREATE TABLE organisations (
    edition_id        text NOT NULL REFERENCES editions (id),
    id                text NOT NULL,
    name              text NOT NULL,
    contact_name      text NOT NULL,
    contact_email     text NOT NULL,
    contact_language  text NOT NULL,
    PRIMARY KEY (edition_id, id)
);

-- What each participant was last told by matching (the region's matches topic), one row per sign-up.
CREATE TABLE placements (
    signup_id              text PRIMARY KEY,
    outcome                text NOT NULL CHECK (outcome IN ('assigned', 'offered', 'waitlisted', 'unmatched')),
    offer_id               text,
    rank                   int,
    position               int,
    reason_code            text,
    seat_offer_id          text,
    seat_offer_rank        int,
    seat_offer_expires_at  timestamptz,
    updated_at             timestamptz NOT NULL
);

-- Feedback on a visit, once per sign-up and offer; `learned` is kept for the relay.
CREATE TABLE feedback (
    id              text PRIMARY KEY,
    signup_id       text NOT NULL REFERENCES signups (id),
    offer_id        text NOT NULL,
    rating          int  NOT NULL CHECK (rating BETWEEN 1 AND 5),
    learned         text NOT NULL DEFAULT '',
    share_publicly  boolean NOT NULL DEFAULT false,
    language        text NOT NULL,
    submitted_at    timestamptz NOT NULL,
    UNIQUE (signup_id, offer_id)
);
