-- The content probe (SHA-1 of three 64 KiB windows, see web-wasm/src/probe.rs), taken by
-- the verifier from the stored bytes: a client whose size and probe match a verified file
-- hashes the whole file before it sends anything.
ALTER TABLE files ADD COLUMN probe TEXT;
CREATE INDEX files_probe_idx ON files (size, probe) WHERE status = 'verified';
