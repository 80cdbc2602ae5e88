-- Issue 13: the sender claims a batch of due messages in one short transaction and marks them
-- `sending` under a lease (a token per claim); it sends them outside any transaction, over a pool of
-- SMTP connections, and records the outcomes in batches. While a message is `sending`,
-- `next_attempt_at` is the end of its lease: a message whose sender died is due again once the lease
-- has run out (the documented duplicate window: at most the messages in flight at the crash).
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('awaiting_contact', 'pending', 'sending', 'sent', 'failed'));
-- The claim that holds a `sending` message; an outcome is recorded only under the lease it was sent with.
ALTER TABLE notifications ADD COLUMN lease uuid;

-- The sender's queue: due pending messages and sending ones whose lease has run out.
CREATE INDEX notifications_claimable ON notifications (next_attempt_at, created_at)
    WHERE status IN ('pending', 'sending');
CREATE INDEX notifications_claimable_by_region ON notifications (region, next_attempt_at)
    WHERE status IN ('pending', 'sending');
