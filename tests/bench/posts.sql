-- posts.sql - the benchmarks' second database: Mastodon's five biggest
-- tables (tests/pg/mastodon.sql, as cluster.sh load), filled with text that compresses
-- like real posts rather than like a 50-word vocabulary does.
--
-- An 8000-word vocabulary of made-up words, drawn with a Zipf-like
-- (log-uniform) frequency, with hashtags, mentions, links with unique
-- paths, and unique ids in URIs and blurhashes: `pg_dump -Fc` keeps
-- about a fifth of pg_database_size, as it does on a real instance.
-- setseed makes it the same on every run.
--
--   psql -v n=STATUSES -f posts.sql      (n = 1000 per MB, as cluster.sh)

SELECT setseed(0.17) \g /dev/null

CREATE TEMP TABLE syl AS
  SELECT array['ba','be','bi','bo','bu','ca','ce','ci','co','da','de','di',
    'do','du','fa','fe','fi','fo','ga','ge','gi','go','ha','he','hi','ho','ja',
    'ka','ke','ki','ko','la','le','li','lo','lu','ma','me','mi','mo','mu','na',
    'ne','ni','no','nu','pa','pe','pi','po','ra','re','ri','ro','ru','sa','se',
    'si','so','su','ta','te','ti','to','tu','va','ve','vi','vo','wa','we','wi',
    'ya','yo','za','ze','zo','str','th','sh','ch','qu','ing','er','est','ly',
    'tion','ment','ous','al','an','en','in','on','un','ar','or','ir'] AS s;
-- 8000 words of one to four syllables; the short ones come first, so
-- that the frequent words are short, as in a real language.
CREATE TEMP TABLE vocab AS
  SELECT array_agg(w ORDER BY length(w), w) AS v FROM (
    SELECT DISTINCT (SELECT string_agg(s[1 + (random() * 97)::int], '')
                       FROM syl, generate_series(0, (g % 4)::int)) AS w
    FROM generate_series(1, 9000) g) x;
-- A word by Zipf-like frequency: exp of a uniform draw over ln(8000).
CREATE TEMP TABLE zipf AS SELECT ln(least(8000, array_length(v, 1))) AS l FROM vocab;

-- One post of nwords tokens.  plpgsql, so that the vocabulary array is
-- read once per post rather than once per word.
CREATE FUNCTION pg_temp.post(nwords int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v text[];
  l float8;
  words text[] := '{}';
  r float8;
  w text;
BEGIN
  SELECT vocab.v, zipf.l INTO v, l FROM vocab, zipf;
  FOR i IN 1..nwords LOOP
    r := random();
    w := v[ceil(exp(random() * l))::int];
    IF r < 0.035 THEN
      w := '#' || w;
    ELSIF r < 0.060 THEN
      w := '@' || w || (random() * 9999)::int || '@' ||
        v[ceil(exp(random() * l))::int] || '.social';
    ELSIF r < 0.075 THEN
      w := 'https://' || w || '.example/' || v[ceil(exp(random() * l))::int] ||
        '/' || substr(md5(random()::text), 1, 10);
    END IF;
    words := words || w;
  END LOOP;
  RETURN array_to_string(words, ' ');
END
$$;

\ir ../pg/mastodon.sql

-- Snowflake-like ids: time in the high bits, noise in the low ones.
INSERT INTO accounts
SELECT g, (SELECT v[ceil(exp(random() * l))::int] FROM vocab, zipf) || g,
  CASE WHEN g % 3 = 0 THEN NULL
    ELSE (SELECT v[ceil(exp(random() * l))::int] FROM vocab, zipf) || '.social' END,
  initcap(pg_temp.post(2)),
  pg_temp.post(8 + (g % 25)::int),
  jsonb_build_array(jsonb_build_object('name', 'Website',
    'value', 'https://' || md5(g::text || random()) || '.example/')),
  g % 17 = 0,
  timestamp '2017-04-01' + g * interval '17 minutes' + random() * interval '1 hour',
  timestamp '2024-01-01' + random() * interval '300 days'
FROM generate_series(1::bigint, GREATEST(:n / 20, 10)) g;

INSERT INTO statuses
SELECT id, 'https://' || d || '/users/' || a || '/statuses/' || id, txt,
  ts, ts + CASE WHEN random() < 0.1 THEN random() * interval '2 days' ELSE '0' END,
  CASE WHEN random() < 0.25 THEN id - 1 - (random() * 1e9)::bigint END,
  CASE WHEN random() < 0.09 THEN id - 5 - (random() * 1e9)::bigint END,
  a, (random() * 3)::int, random() < 0.04,
  CASE WHEN random() < 0.04 THEN pg_temp.post(3) ELSE '' END,
  (array['en','de','fr','es','ja','pt','nl'])[1 + (random() * 6)::int]
FROM (SELECT g, (extract(epoch FROM ts)::bigint * 1000 << 16) + (random() * 65535)::bigint AS id,
        ts, 1 + (random() * GREATEST(:n / 20, 10))::bigint AS a,
        (SELECT v[ceil(exp(random() * l))::int] FROM vocab, zipf) || '.social' AS d,
        pg_temp.post(6 + (random() * 50)::int) AS txt
      FROM (SELECT g, timestamp '2018-01-01' + g * interval '41 seconds' +
              random() * interval '40 seconds' AS ts
            FROM generate_series(1::bigint, :n) g) s) x;

INSERT INTO media_attachments
SELECT g, (random() * 1e15)::bigint, 1 + (random() * GREATEST(:n / 20, 10))::bigint,
  md5(g::text || random()) || '.jpg', 'image/jpeg', 20000 + (random() * 900000)::int,
  jsonb_build_object('original', jsonb_build_object('width', 1280,
    'height', 720 + (random() * 360)::int, 'aspect', round(random()::numeric, 4)),
    'small', jsonb_build_object('width', 640, 'height', 360),
    'focus', jsonb_build_object('x', round(random()::numeric, 2), 'y', 0.0)),
  'https://files.example/media/' || substr(md5(g::text), 1, 3) || '/' || md5(random()::text) || '.jpg',
  pg_temp.post(4 + (random() * 12)::int),
  substr(md5(random()::text) || md5(random()::text), 1, 28),
  timestamp '2018-01-01' + g * interval '123 seconds'
FROM generate_series(1::bigint, :n / 3) g;

INSERT INTO follows
SELECT g, 1 + (random() * GREATEST(:n / 20, 10))::bigint,
  1 + (random() * GREATEST(:n / 20, 10))::bigint, random() < 0.8,
  'https://' || md5(g::text) || '.example/' || md5(random()::text),
  timestamp '2018-01-01' + g * interval '300 seconds' + random() * interval '5 minutes'
FROM generate_series(1::bigint, :n / 2) g;

INSERT INTO notifications
SELECT g, (random() * 1e15)::bigint, (array['Status','Follow','Favourite','Mention'])[1 + (random() * 3)::int],
  1 + (random() * GREATEST(:n / 20, 10))::bigint, 1 + (random() * GREATEST(:n / 20, 10))::bigint,
  (array['reblog','follow','favourite','mention'])[1 + (random() * 3)::int],
  timestamp '2018-01-01' + g * interval '60 seconds' + random() * interval '1 minute'
FROM generate_series(1::bigint, :n) g;

\ir ../pg/mastodon_indexes.sql
