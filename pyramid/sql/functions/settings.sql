-- Tuning knobs, read from custom settings so that a session (a test, a DBA) can change them with
-- SET: pyramid.exact_below (a document filter that leaves at most this many items of a level is
-- served by scoring exactly those items), pyramid.scan_below (a query whose postings lists hold at
-- most this many entries in all is scored by reading them whole, faster than pruning),
-- pyramid.prune_long_lists (pruning is tried only when at most this many of the query's lists are
-- too long to be read whole in its first round) and
-- pyramid.prune_budget (pruning gives up for the full scan once reading on would pass this share
-- of the query's postings).
CREATE OR REPLACE FUNCTION pyramid_setting(name text, fallback double precision) RETURNS double precision
LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('pyramid.' || name, true), '')::double precision, fallback) $$;
