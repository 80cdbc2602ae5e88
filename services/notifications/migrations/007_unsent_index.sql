-- The sender's gauges (repository.backlog: pending, oldest, awaiting a contact) every GAUGE_SECONDS:
-- without an index that covers all three unsent states the count scanned every message ever sent
-- (~50 ms of the database at 100,000 messages, once a second while sending). The unsent messages only.
CREATE INDEX notifications_unsent ON notifications (status, created_at)
    WHERE status IN ('pending', 'sending', 'awaiting_contact');
