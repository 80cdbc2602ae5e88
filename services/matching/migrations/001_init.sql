-- The matching service's own copy of what it needs from registration (fed by Kafka), and its results.

CREATE TABLE editions (
    id            text        PRIMARY KEY,
    region        text        NOT NULL,
    status        text        NOT NULL DEFAULT 'open',
    -- Set when something changed after assignments were published: the re-matcher picks it up.
    dirty_since   timestamptz
);

CREATE TABLE offers (
    id           text    PRIMARY KEY,
    edition_id   text    NOT NULL,
    host_org     text    NOT NULL,
    title        text    NOT NULL,
    date         date    NOT NULL,
    capacity     int     NOT NULL,
    max_per_org  int,
    format       text    NOT NULL,
    location     text    NOT NULL,
    status       text    NOT NULL DEFAULT 'published'  -- published | cancelled
);
CREATE INDEX offers_by_edition ON offers (edition_id);

-- Contact data is kept because match events carry the recipient (event-carried state transfer).
CREATE TABLE participants (
    signup_id     text        PRIMARY KEY,
    edition_id    text        NOT NULL,
    org           text        NOT NULL,
    name          text        NOT NULL,
    email         text        NOT NULL,
    language      text        NOT NULL,
    choices       text[]      NOT NULL,
    available     date[],
    max_visits    int         NOT NULL,
    signed_up_at  timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'active'  -- active | withdrawn
);
CREATE INDEX participants_by_edition ON participants (edition_id);

CREATE TABLE match_runs (
    id              uuid        PRIMARY KEY,
    edition_id      text        NOT NULL,
    kind            text        NOT NULL,                    -- full | incremental
    status          text        NOT NULL DEFAULT 'running',  -- running | done | failed
    stage           text        NOT NULL DEFAULT 'queued',
    progress        real        NOT NULL DEFAULT 0,
    input_hash      text,
    participants    int,
    offers          int,
    assigned        int,          -- placements in the result (frozen ones included)
    newly_assigned  int,
    waitlisted      int,
    unmatched       int,
    rank_cost       bigint,
    duration_ms     int,
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
-- At most one run at a time per edition.
CREATE UNIQUE INDEX one_running_run_per_edition ON match_runs (edition_id) WHERE status = 'running';

-- Published assignments are frozen: a later run never moves them. A withdrawal releases one, a
-- cancelled offer displaces it (the participant is then re-placed first).
CREATE TABLE assignments (
    signup_id   text        NOT NULL,
    offer_id    text        NOT NULL,
    edition_id  text        NOT NULL,
    rank        int         NOT NULL,
    run_id      uuid        NOT NULL REFERENCES match_runs (id),
    status      text        NOT NULL DEFAULT 'active',  -- active | released | displaced
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (signup_id, offer_id)
);
CREATE INDEX assignments_by_edition ON assignments (edition_id) WHERE status = 'active';
CREATE INDEX assignments_by_offer ON assignments (offer_id) WHERE status = 'active';

-- What each participant was last told (so a re-run only announces changes), and the waiting list.
CREATE TABLE outcomes (
    signup_id     text        PRIMARY KEY,
    edition_id    text        NOT NULL,
    state         text        NOT NULL,  -- assigned | waitlisted | unmatched
    reason_code   text,
    position      int,
    run_id        uuid        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outcomes_by_edition ON outcomes (edition_id, state);
