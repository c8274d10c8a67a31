-- Verified authorship (issue 23): the signature check of each revision
-- (`signature::Verification`); NULL when signatures are not checked (verify.policy = "off").
ALTER TABLE revisions ADD COLUMN signature JSONB;
