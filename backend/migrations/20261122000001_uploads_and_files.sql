-- Uploads in progress and the files they become. Plain SQL that SQLite and PostgreSQL
-- both run as written: times are Unix milliseconds in BIGINT, states are short TEXT.

CREATE TABLE uploads (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    size              BIGINT NOT NULL,
    content_type      TEXT NOT NULL,
    -- The client's File.lastModified: with name and size, what makes a resume match.
    last_modified     BIGINT,
    -- Whole-file SHA-1 (hex) as claimed by the client; verified later from stored bytes.
    sha1              TEXT,
    part_size         BIGINT NOT NULL,
    part_count        BIGINT NOT NULL,
    storage_key       TEXT NOT NULL,
    -- The storage's multipart upload id; NULL for a single PUT.
    storage_upload_id TEXT,
    -- uploading | completing | complete | instant | aborting
    state             TEXT NOT NULL,
    file_id           TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE INDEX uploads_resume_idx ON uploads (name, size, last_modified) WHERE state = 'uploading';
CREATE INDEX uploads_idle_idx ON uploads (state, updated_at);

CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    -- UNIQUE: however many replicas complete an upload at once, one file row results.
    upload_id    TEXT UNIQUE,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    -- Hex SHA-1: the client's claim until verified, then the hash of the stored bytes.
    sha1         TEXT,
    storage_key  TEXT NOT NULL,
    -- pending | verified | corrupt. Only verified files are dedup targets.
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    verified_at  BIGINT
);

CREATE INDEX files_dedup_idx ON files (sha1, size) WHERE status = 'verified';
CREATE INDEX files_key_idx ON files (storage_key);
CREATE INDEX files_created_idx ON files (created_at, id);
