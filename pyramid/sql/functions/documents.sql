-- Document filters: globs over document sources.

-- A glob (* ? and literal characters) as a LIKE pattern (escape character \).
CREATE OR REPLACE FUNCTION pyramid_glob_like(glob text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT replace(replace(replace(replace(replace(glob, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_') $$;

-- Ids of the documents whose source or file matches one of the globs (whole path, or its tail
-- after a /). The file counts too: a feed item's source is "…/news.rss#<guid>", and "news.rss" or
-- "*.rss" must find every item of the feed.
-- Only documents of the given collections (NULL: every one in scope).
CREATE OR REPLACE FUNCTION pyramid_match_documents(globs text[], cols integer[] DEFAULT NULL) RETURNS bigint[]
LANGUAGE sql STABLE
AS $$ SELECT coalesce(array_agg(d.id ORDER BY d.id), '{}') FROM documents d
      WHERE d.collection_id = ANY(pyramid_search_collections(cols))
        AND EXISTS (SELECT 1 FROM unnest(globs) g
                    WHERE d.source LIKE pyramid_glob_like(g) ESCAPE '\'
                       OR d.source LIKE '%/' || pyramid_glob_like(g) ESCAPE '\'
                       OR d.path LIKE pyramid_glob_like(g) ESCAPE '\'
                       OR d.path LIKE '%/' || pyramid_glob_like(g) ESCAPE '\') $$;
