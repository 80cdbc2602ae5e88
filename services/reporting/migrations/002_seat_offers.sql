-- Waiting-list seat offers (SeatOffered / SeatOfferEnded): an open offer is a match outcome of its own.
ALTER TABLE matches DROP CONSTRAINT matches_state_check;
ALTER TABLE matches ADD CONSTRAINT matches_state_check CHECK (state IN ('assigned', 'offered', 'waitlisted', 'unmatched'));

-- An assignment or an open seat offer on an offer that was cancelled since is 'awaiting_rematch'.
CREATE OR REPLACE VIEW match_outcomes AS
SELECT m.signup_id, m.edition, m.offer_date, m.rank,
       CASE WHEN m.state IN ('assigned', 'offered') AND o.cancelled THEN 'awaiting_rematch' ELSE m.state END AS outcome
  FROM matches m
  JOIN signups s ON s.id = m.signup_id AND NOT s.withdrawn
  LEFT JOIN offers o ON o.id = m.offer_id;
