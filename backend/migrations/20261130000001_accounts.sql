-- Accounts. Every upload and file belongs to a user; users own file entries, not content:
-- several users' files may share one stored object (instant upload), which goes when its
-- last file does. Passwords are kept only as Argon2id PHC strings, session tokens only as
-- their SHA-256.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    -- Lowercase, 3 to 64 of a-z 0-9 . _ -
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    -- Hex SHA-256 of the bearer token.
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);
-- Rows made before accounts existed have no owner, and so are seen by nobody.
ALTER TABLE uploads ADD COLUMN user_id TEXT;
ALTER TABLE files ADD COLUMN user_id TEXT;
DROP INDEX uploads_resume_idx;
CREATE INDEX uploads_resume_idx ON uploads (user_id, name, size, last_modified) WHERE state = 'uploading';
CREATE INDEX uploads_user_idx ON uploads (user_id, state);
CREATE INDEX files_user_idx ON files (user_id, created_at, id);
