-- The journey (issue 9): a cancelled edition with its reason, offers by sequence (OfferChanged), a
-- sign-up's approval (SignupSubmitted.approval, SignupApproved, SignupRefused), the template of each
-- notification, and whether feedback may be shared publicly. Still no personal data, no free text.
ALTER TABLE editions DROP CONSTRAINT editions_status_check;
ALTER TABLE editions ADD CONSTRAINT editions_status_check
    CHECK (status IN ('unknown', 'open', 'closed', 'cancelled'));
ALTER TABLE editions ADD COLUMN cancellation_reason text;
ALTER TABLE editions ADD COLUMN cancelled_at        timestamptz;

-- The sequence of the stored date and capacity (0: OfferPublished); NULL while only the cancellation is known.
ALTER TABLE offers ADD COLUMN sequence int;
UPDATE offers SET sequence = 0 WHERE date IS NOT NULL;

-- not_required | pending | approved | refused; NULL while only the withdrawal is known.
ALTER TABLE signups ADD COLUMN approval text
    CHECK (approval IN ('not_required', 'pending', 'approved', 'refused'));
UPDATE signups SET approval = 'not_required' WHERE signed_up_at IS NOT NULL;

-- The latest outcome's template (a kind of message); NULL for rows stored before this migration.
ALTER TABLE notifications ADD COLUMN template text;

ALTER TABLE feedback ADD COLUMN share_publicly boolean NOT NULL DEFAULT false;

-- What counts for an active sign-up (neither withdrawn nor refused): its latest match outcome, where an
-- assignment or an open seat offer on an offer that was cancelled since is 'awaiting_rematch'; the visit's
-- day is the offer's current date (OfferChanged may move it), else the one the match event named.
DROP VIEW match_outcomes;
CREATE VIEW match_outcomes AS
SELECT m.signup_id, m.edition_id, coalesce(o.date, m.offer_date) AS offer_date, m.rank,
       CASE WHEN m.outcome IN ('assigned', 'offered') AND o.cancelled THEN 'awaiting_rematch' ELSE m.outcome END AS outcome
  FROM matches m
  JOIN signups s ON s.id = m.signup_id AND NOT s.withdrawn AND s.approval IS DISTINCT FROM 'refused'
  LEFT JOIN offers o ON o.id = m.offer_id;
