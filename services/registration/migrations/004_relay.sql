-- Issue 10, the national relay (write side): the relay plan and the baton, and the moderation of
-- knowledge items (shareable feedback approved or rejected by the region's organiser).
CREATE TABLE relay_legs (
    id              text PRIMARY KEY,
    region          text NOT NULL,
    edition         text NOT NULL,
    first_day       date NOT NULL,
    last_day        date NOT NULL,
    position        int  NOT NULL UNIQUE CHECK (position >= 1),
    activity        text NOT NULL DEFAULT '',
    allow_gap       boolean NOT NULL DEFAULT false,
    timezone        text NOT NULL,
    status          text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'holding', 'handed_over')),
    started_at      timestamptz,
    handed_over_at  timestamptz,
    early           boolean NOT NULL DEFAULT false,
    to_leg_id       text,
    CHECK (last_day >= first_day)
);
-- One region holds the baton at a time.
CREATE UNIQUE INDEX relay_legs_one_holder ON relay_legs ((true)) WHERE status = 'holding';

-- A moderated knowledge item (pending ones have no row: shareable feedback without a decision).
CREATE TABLE knowledge_items (
    feedback_id  text PRIMARY KEY REFERENCES feedback (id),
    region       text NOT NULL,
    status       text NOT NULL CHECK (status IN ('approved', 'rejected')),
    text         text NOT NULL DEFAULT '',
    reason       text NOT NULL DEFAULT '',
    decided_at   timestamptz NOT NULL,
    -- The relay leg it travelled with (approved items of the leg's region, once).
    leg_id       text REFERENCES relay_legs (id)
);
CREATE INDEX knowledge_items_to_carry ON knowledge_items (region, decided_at) WHERE status = 'approved' AND leg_id IS NULL;
