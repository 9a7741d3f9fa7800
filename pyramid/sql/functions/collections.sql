-- What a session reads: the collections in its scope (the session setting pyramid.collections,
-- set by the pyramid for every connection; unset: every collection), within, for a role under
-- row-level security, those it may read (the policy on collections).

CREATE OR REPLACE FUNCTION pyramid_in_scope(collection integer) RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT pyramid_scope() IS NULL OR collection = ANY(pyramid_scope()) $$;

-- The collections a search reads: the given ones (NULL: all) within the scope.
CREATE OR REPLACE FUNCTION pyramid_search_collections(cols integer[]) RETURNS integer[]
LANGUAGE sql STABLE
AS $$ SELECT ARRAY(SELECT c.id FROM collections c
                   WHERE (cols IS NULL OR c.id = ANY(cols))
                     AND (pyramid_scope() IS NULL OR c.id = ANY(pyramid_scope()))
                   ORDER BY c.id) $$;
