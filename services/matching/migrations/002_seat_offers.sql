-- Seat offers. After publication, a seat that a re-match finds for someone on the waiting list is
-- offered to them, not assigned: the assignment row is 'offered' (it holds the seat, like an active
-- one) until they accept it ('active'), decline it ('declined') or let it expire ('expired').
-- A declined or expired row stays: its pair is never placed again in the edition.
-- assignments.status: active | released | displaced | offered | declined | expired
-- outcomes.state:     assigned | waitlisted | unmatched | offered
ALTER TABLE assignments
    ADD COLUMN offered_at        timestamptz,  -- set when the pair was offered, kept after the answer
    ADD COLUMN offer_expires_at  timestamptz,
    ADD COLUMN offer_ended_at    timestamptz;  -- accepted, declined or expired at
CREATE INDEX assignments_open_offers ON assignments (offer_expires_at) WHERE status = 'offered';
CREATE INDEX assignments_offers_by_edition ON assignments (edition_id, offered_at) WHERE offered_at IS NOT NULL;

ALTER TABLE match_runs ADD COLUMN newly_offered int;
