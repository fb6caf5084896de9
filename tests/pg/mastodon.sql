-- mastodon.sql - the five tables that hold most of a Mastodon instance's
-- bytes, with its column types; filled by cluster.sh load and by
-- tests/bench/posts.sql, then indexed by mastodon_indexes.sql.
CREATE TABLE accounts (
  id bigint PRIMARY KEY,
  username text NOT NULL,
  domain text,
  display_name text NOT NULL DEFAULT '',
  note text NOT NULL DEFAULT '',
  fields jsonb,
  locked boolean NOT NULL DEFAULT false,
  created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL
);
CREATE TABLE statuses (
  id bigint PRIMARY KEY,
  uri text,
  text text NOT NULL DEFAULT '',
  created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL,
  in_reply_to_id bigint,
  reblog_of_id bigint,
  account_id bigint NOT NULL,
  visibility integer NOT NULL DEFAULT 0,
  sensitive boolean NOT NULL DEFAULT false,
  spoiler_text text NOT NULL DEFAULT '',
  language text
);
CREATE TABLE media_attachments (
  id bigint PRIMARY KEY,
  status_id bigint,
  account_id bigint,
  file_file_name text,
  file_content_type text,
  file_file_size integer,
  file_meta jsonb,
  remote_url text NOT NULL DEFAULT '',
  description text,
  blurhash text,
  created_at timestamp NOT NULL
);
CREATE TABLE follows (
  id bigint PRIMARY KEY,
  account_id bigint NOT NULL,
  target_account_id bigint NOT NULL,
  show_reblogs boolean NOT NULL DEFAULT true,
  uri text,
  created_at timestamp NOT NULL
);
CREATE TABLE notifications (
  id bigint PRIMARY KEY,
  activity_id bigint NOT NULL,
  activity_type text NOT NULL,
  account_id bigint NOT NULL,
  from_account_id bigint NOT NULL,
  type text,
  created_at timestamp NOT NULL
);
