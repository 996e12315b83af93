-- Share links: let someone without an account download one file until the link expires or
-- is revoked. Only a hash of each token is kept: the token itself is shown once, to the
-- one who made the link.
CREATE TABLE shares (
    id         TEXT PRIMARY KEY,
    file_id    TEXT NOT NULL,
    -- Hex SHA-256 of the token.
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX shares_file_idx ON shares (file_id);
