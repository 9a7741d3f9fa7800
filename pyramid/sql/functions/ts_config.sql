-- The text search configuration this database was built with (recorded by migration 001).

CREATE OR REPLACE FUNCTION pyramid_ts_config() RETURNS regconfig
LANGUAGE sql STABLE
AS $$ SELECT coalesce((SELECT value #>> '{}' FROM pyramid_meta WHERE key = 'text_search_config'),
                      'english')::regconfig $$;
