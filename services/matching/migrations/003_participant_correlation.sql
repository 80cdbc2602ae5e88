-- The correlation id of each participant's sign-up request (SignupSubmitted.correlation_id): every
-- match event about the participant carries it, so it follows the person. NULL for rows received
-- before it was kept (their events carry the run's or the request's id instead).
ALTER TABLE participants ADD COLUMN correlation_id uuid;
