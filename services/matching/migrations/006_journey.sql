-- Issue 9 (the journey). Editions can be cancelled, may require the employer's approval of sign-ups,
-- and may be matched by themselves at their sign-up deadline (scheduled step `match_at_deadline` in
-- the runtime's scheduled_steps table). A closed or cancelled edition is never matched again.
-- editions.status:     open | closed | cancelled
-- participants.status: active | withdrawn | refused (by the employer: ended like a withdrawal)
-- assignments.status:  + cancelled (a seat offer that ended because its edition was cancelled)
ALTER TABLE editions
    ADD COLUMN requires_approval  boolean     NOT NULL DEFAULT false,
    ADD COLUMN match_at_deadline  boolean     NOT NULL DEFAULT false,
    ADD COLUMN signup_deadline    timestamptz;

-- not_required | pending | approved: a pending sign-up is kept but left out of every run.
ALTER TABLE participants ADD COLUMN approval text NOT NULL DEFAULT 'not_required';

-- The offer's version (OfferPublished: 0, +1 per OfferChanged): an older version never replaces a newer.
ALTER TABLE offers ADD COLUMN sequence int NOT NULL DEFAULT 0;
