-- Reporting keeps the minimal state per entity and derives every figure with SQL aggregates at read
-- time, so replays and out-of-order events cannot make a figure drift. No personal data: ids, orgs,
-- dates and outcomes only. There are no foreign keys: events of different topics arrive in any order.

-- An edition is known from the first event that names it; EditionOpened fills in the rest.
CREATE TABLE editions (
    id         text PRIMARY KEY,
    region     text NOT NULL,
    name       text,
    starts_on  date,
    ends_on    date,
    status     text NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'open', 'closed'))
);
CREATE INDEX editions_by_region ON editions (region, starts_on, id);

-- date and capacity are NULL while only the cancellation is known.
CREATE TABLE offers (
    id         text    PRIMARY KEY,
    edition    text    NOT NULL,
    date       date,
    capacity   int,
    cancelled  boolean NOT NULL DEFAULT false
);
CREATE INDEX offers_by_edition ON offers (edition);

-- org and signed_up_at are NULL while only the withdrawal is known.
CREATE TABLE signups (
    id            text        PRIMARY KEY,
    edition       text        NOT NULL,
    org           text,
    signed_up_at  timestamptz,
    withdrawn     boolean     NOT NULL DEFAULT false
);
CREATE INDEX signups_by_edition ON signups (edition);

-- The latest match outcome per sign-up; (occurred_at, event_id) orders the outcomes.
CREATE TABLE matches (
    signup_id    text        PRIMARY KEY,
    edition      text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('assigned', 'waitlisted', 'unmatched')),
    offer_id     text,
    offer_date   date,
    rank         int,
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL
);
CREATE INDEX matches_by_edition ON matches (edition);

-- The latest outcome per notification (a transient failure may be followed by a success).
CREATE TABLE notifications (
    id           uuid        PRIMARY KEY,
    edition      text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('sent', 'failed')),
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL
);
CREATE INDEX notifications_by_edition ON notifications (edition);

CREATE TABLE feedback (
    id       text     PRIMARY KEY,
    edition  text     NOT NULL,
    rating   smallint NOT NULL CHECK (rating BETWEEN 1 AND 5)
);
CREATE INDEX feedback_by_edition ON feedback (edition);

CREATE TABLE relay_legs (
    id               text        PRIMARY KEY,
    region           text        NOT NULL,
    edition          text        NOT NULL,
    starts_on        date,
    handed_over_to   text,
    handed_over_at   timestamptz
);

-- What counts for an active sign-up: its latest match outcome, where an assignment to an offer that
-- was cancelled since is 'awaiting_rematch'. Withdrawn sign-ups have no outcome.
CREATE VIEW match_outcomes AS
SELECT m.signup_id, m.edition, m.offer_date, m.rank,
       CASE WHEN m.state = 'assigned' AND o.cancelled THEN 'awaiting_rematch' ELSE m.state END AS outcome
  FROM matches m
  JOIN signups s ON s.id = m.signup_id AND NOT s.withdrawn
  LEFT JOIN offers o ON o.id = m.offer_id;
