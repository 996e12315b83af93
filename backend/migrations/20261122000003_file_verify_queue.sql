-- When a file was last put on the verification queue (ms since the epoch). The queue lives
-- in Redis; if Redis loses it, the reaper queues a file again once this is old enough, and
-- the conditional update on this column lets exactly one replica do so.
ALTER TABLE files ADD COLUMN verify_queued_at BIGINT;
CREATE INDEX files_pending_idx ON files (status, verify_queued_at) WHERE status = 'pending';
