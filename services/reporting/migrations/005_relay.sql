-- The relay and the dashboard feed (issue 10): the relay plan per leg (RelayLegPlanned, the latest
-- version wins), hand-overs with the next leg, early and the knowledge items carried; approved knowledge
-- items (their approved text is public); the day feedback was given; the dashboard feed's last
-- published records (to publish only what changed) and a generation counter for live pages.
ALTER TABLE relay_legs ADD COLUMN position      int;
ALTER TABLE relay_legs ADD COLUMN first_day     date;
ALTER TABLE relay_legs ADD COLUMN last_day      date;
ALTER TABLE relay_legs ADD COLUMN activity      text NOT NULL DEFAULT '';
ALTER TABLE relay_legs ADD COLUMN planned_at    timestamptz;
ALTER TABLE relay_legs ADD COLUMN planned_event uuid;
ALTER TABLE relay_legs ADD COLUMN to_leg_id     text;
ALTER TABLE relay_legs ADD COLUMN early         boolean NOT NULL DEFAULT false;
ALTER TABLE relay_legs ADD COLUMN knowledge_items text[] NOT NULL DEFAULT '{}';

-- A moderated knowledge item: the latest decision (occurred_at, event_id) wins; a rejected one keeps
-- no text.
CREATE TABLE knowledge_items (
    feedback_id  text        PRIMARY KEY,
    region       text        NOT NULL,
    edition_id   text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('approved', 'rejected')),
    offer_id     text,
    text         text,
    language     text,
    offer_title  text,
    host_org     text,
    approved_at  timestamptz,
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL
);
CREATE INDEX knowledge_items_by_region ON knowledge_items (region);

ALTER TABLE feedback ADD COLUMN submitted_at timestamptz;

CREATE TABLE dashboard_records (
    key           text        PRIMARY KEY,
    figures       jsonb       NOT NULL,
    published_at  timestamptz NOT NULL
);

CREATE TABLE dashboard_state (
    id          int    PRIMARY KEY CHECK (id = 1),
    generation  bigint NOT NULL
);
INSERT INTO dashboard_state VALUES (1, 0);
