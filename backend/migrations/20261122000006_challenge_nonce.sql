-- The challenge's nonce (hex of 16 random bytes): the answer is SHA-1(nonce || range), so it
-- is never a value the claimant already knows, such as a small file's own SHA-1 when the
-- range is the whole file. A used challenge keeps `challenge_file` with no nonce, so an
-- upload gets one challenge in its life.
ALTER TABLE uploads ADD COLUMN challenge_nonce TEXT;
