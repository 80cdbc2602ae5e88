-- Contract v2: match events carry no recipient and sign-ups no name or e-mail address (contact
-- details travel only on a region's compacted participants topic, which notifications reads).
-- Matching keeps no personal data: the copies it kept for the recipient go.
ALTER TABLE participants DROP COLUMN name, DROP COLUMN email;
