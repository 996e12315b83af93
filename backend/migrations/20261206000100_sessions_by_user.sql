-- Signing out everywhere and changing a password end every session of one user.
CREATE INDEX sessions_user_idx ON sessions (user_id);
