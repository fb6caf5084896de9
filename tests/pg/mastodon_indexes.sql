-- mastodon_indexes.sql - the usual indexes of mastodon.sql's tables, made
-- after the data is in (faster than keeping them up to date row by row).
CREATE INDEX index_accounts_on_username_and_domain_lower
  ON accounts (lower(username), COALESCE(lower(domain), ''));
CREATE INDEX index_statuses_20190820 ON statuses (account_id, id DESC, visibility, updated_at);
CREATE INDEX index_statuses_on_in_reply_to_id ON statuses (in_reply_to_id);
CREATE UNIQUE INDEX index_statuses_on_uri ON statuses (uri);
CREATE INDEX index_media_attachments_on_status_id ON media_attachments (status_id);
CREATE INDEX index_follows_on_account_id ON follows (account_id, target_account_id);
CREATE INDEX index_notifications_on_account_id_and_id ON notifications (account_id, id DESC);
ANALYZE;
