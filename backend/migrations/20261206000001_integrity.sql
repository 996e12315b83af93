-- Integrity (issue 13). A part's SHA-1 is pinned the first time it is signed: the same part
-- can never be signed again for other bytes, so no second URL can exist to swap it.
CREATE TABLE part_claims (
    upload_id TEXT NOT NULL,
    number    BIGINT NOT NULL,
    -- Base64 SHA-1 the part was first signed with.
    sha1      TEXT NOT NULL,
    PRIMARY KEY (upload_id, number)
);
-- What the verifier read: the stored object's ETag when its bytes were hashed. Linking
-- another upload to a file's object first checks the object still has this ETag.
ALTER TABLE files ADD COLUMN verified_etag TEXT;
-- Files verified before the ETag was recorded may already have been swapped (the hole this
-- closes: a second single-PUT URL) and are verified again, from their stored bytes, before
-- they are dedup targets. Only a file of at most 5 GiB, S3's largest single PUT, can have
-- been a single PUT.
UPDATE files SET status = 'pending', verify_queued_at = NULL WHERE status = 'verified' AND size <= 5368709120;
-- Claims of stored content, one per user and content: the same user asking again gets the
-- same challenge until it is answered or expires; a failed proof is final for a while; the
-- rows of the last hour bound how often a user may claim others' content.
CREATE TABLE dedup_claims (
    user_id          TEXT NOT NULL,
    sha1             TEXT NOT NULL,
    size             BIGINT NOT NULL,
    file_id          TEXT NOT NULL,
    challenge_offset BIGINT NOT NULL,
    challenge_length BIGINT NOT NULL,
    nonce            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    -- Set when a proof failed: no new challenge for this content until the lockout ends.
    failed_at        BIGINT,
    PRIMARY KEY (user_id, sha1, size)
);
-- Each look at other users' content (a claim or a probe, hit or miss) in the last hour:
-- `dedup.claims_per_hour` bounds them per user, so the existence oracle cannot be swept.
CREATE TABLE dedup_attempts (
    -- Random: a look that finds the hour full takes its own row back out.
    id      TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX dedup_attempts_user_idx ON dedup_attempts (user_id, at);
-- The orphan sweep asks, per stored object, whether any row accounts for it.
CREATE INDEX uploads_key_idx ON uploads (storage_key);
