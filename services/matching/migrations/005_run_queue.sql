-- Instances that serve a set of regions share this schema. A run requested on an instance that does
-- not serve the edition's region is recorded 'queued'; an instance serving the region starts it.
-- The instance executing a run holds a session advisory lock on it (repository.RunLocks); a run
-- that is 'running' while nobody holds its lock was interrupted, and is resumed or failed.
-- match_runs.status: queued | running | done | failed
ALTER TABLE match_runs
    ADD COLUMN attempt         int  NOT NULL DEFAULT 1,  -- executions started (0 while queued): a fencing token
    ADD COLUMN correlation_id  uuid;                     -- the request's, for a run started elsewhere or resumed

-- At most one queued or running run per edition.
DROP INDEX one_running_run_per_edition;
CREATE UNIQUE INDEX one_active_run_per_edition ON match_runs (edition_id) WHERE status IN ('queued', 'running');
