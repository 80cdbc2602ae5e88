-- Glossary names (issue 6): `edition_id` for an edition's id, `outcome` for what a participant was
-- last told (MatchOutcome). Renames only; the view is rebuilt on the new names.
DROP VIEW match_outcomes;

ALTER TABLE offers        RENAME COLUMN edition TO edition_id;
ALTER TABLE signups       RENAME COLUMN edition TO edition_id;
ALTER TABLE matches       RENAME COLUMN edition TO edition_id;
ALTER TABLE matches       RENAME COLUMN state   TO outcome;
ALTER TABLE notifications RENAME COLUMN edition TO edition_id;
ALTER TABLE feedback      RENAME COLUMN edition TO edition_id;
ALTER TABLE relay_legs    RENAME COLUMN edition TO edition_id;

-- What counts for an active sign-up: its latest match outcome, where an assignment or an open seat
-- offer on an offer that was cancelled since is 'awaiting_rematch'. Withdrawn sign-ups have no outcome.
CREATE VIEW match_outcomes AS
SELECT m.signup_id, m.edition_id, m.offer_date, m.rank,
       CASE WHEN m.outcome IN ('assigned', 'offered') AND o.cancelled THEN 'awaiting_rematch' ELSE m.outcome END AS outcome
  FROM matches m
  JOIN signups s ON s.id = m.signup_id AND NOT s.withdrawn
  LEFT JOIN offers o ON o.id = m.offer_id;
