-- Proof of possession. An upload that claims content already stored gets that content's
-- file only after answering the SHA-1 of a byte range the server picked at random; these
-- hold the pending challenge (any replica may check the answer).
ALTER TABLE uploads ADD COLUMN challenge_file TEXT;
ALTER TABLE uploads ADD COLUMN challenge_offset BIGINT;
ALTER TABLE uploads ADD COLUMN challenge_length BIGINT;
