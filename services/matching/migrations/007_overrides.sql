-- Issue 11: organisers' overrides and the runs' explanations.
-- An override pins (always place) or forbids (never place) one sign-up–offer pair of an edition;
-- every run takes the live ones in. Audited: who made it (the principal's subject), when (platform
-- clock) and why; removing one keeps the row (removed_by, removed_at).
CREATE TABLE match_overrides (
    id          uuid        PRIMARY KEY,
    edition_id  text        NOT NULL,
    signup_id   text        NOT NULL,
    offer_id    text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('pin', 'forbid')),
    reason      text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    removed_by  text,
    removed_at  timestamptz
);
-- At most one live override per pair.
CREATE UNIQUE INDEX one_live_override_per_pair ON match_overrides (edition_id, signup_id, offer_id)
    WHERE removed_at IS NULL;
CREATE INDEX overrides_by_edition ON match_overrides (edition_id, created_at);

-- The engine's explanation of each participant a run took in (placed, or why not), per run.
CREATE TABLE run_explanations (
    run_id     uuid  NOT NULL,
    signup_id  text  NOT NULL,
    code       text  NOT NULL,                 -- placed | an unmatched reason code (schemas/reasons.py)
    text       text  NOT NULL,                 -- the engine's short English sentence
    ranks      int[] NOT NULL DEFAULT '{}',    -- ranks of the placements
    choices    jsonb NOT NULL DEFAULT '[]',    -- unused choices: [{offer_id, rank, reason}]
    PRIMARY KEY (run_id, signup_id)
);
