-- A participant's personal data can be erased (DELETE /signups/{signup_id}/personal-data): the name
-- and e-mail address are blanked and the moment is kept. An erased sign-up no longer holds its e-mail
-- address's one active sign-up per edition.
ALTER TABLE signups ADD COLUMN erased_at timestamptz;
DROP INDEX signups_one_per_email;
CREATE UNIQUE INDEX signups_one_per_email ON signups (edition_id, lower(email)) WHERE status = 'submitted' AND erased_at IS NULL;
