-- Named queries of collections and their access roles (`pyramid collections`, `grant`, `revoke`).

-- name: list
-- Every collection the caller can see (a role under row-level security: those it may read), with
-- what it holds and the roles that may read or write it.
SELECT c.id, c.name, c.created_at,
       (SELECT count(*) FROM documents d WHERE d.collection_id = c.id) AS documents,
       (SELECT count(*) FROM items i WHERE i.collection_id = c.id) AS items,
       coalesce((SELECT jsonb_agg(jsonb_build_object('role', m.rolname, 'access', a.kind)
                                  ORDER BY m.rolname, a.kind)
                 FROM (VALUES ('read'), ('write')) a(kind)
                 JOIN pg_roles r ON r.rolname = pyramid_collection_role(c.id, a.kind)
                 JOIN pg_auth_members am ON am.roleid = r.oid
                 JOIN pg_roles m ON m.oid = am.member), '[]'::jsonb) AS grants
FROM collections c
ORDER BY c.name

-- name: names
SELECT id, name FROM collections ORDER BY name

-- name: create
-- The collection, made if it does not exist (a concurrent creator's row is found the same way).
WITH made AS (INSERT INTO collections (name) VALUES (%(name)s) ON CONFLICT (name) DO NOTHING RETURNING id)
SELECT id FROM made
UNION ALL
SELECT id FROM collections WHERE name = %(name)s
LIMIT 1

-- name: by_name
SELECT id, name FROM collections WHERE name = %(name)s

-- name: access_role
SELECT pyramid_collection_role(%(id)s, %(kind)s) AS role,
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = pyramid_collection_role(%(id)s, %(kind)s)) AS exists

-- name: role_exists
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s) AS exists

-- name: is_member
SELECT pg_has_role(%(role)s, %(access)s, 'MEMBER') AS yes

-- name: schema
SELECT current_schema() AS name

-- name: remove_items
-- Items first: their triggers take the postings out and write the statistics' deltas.
DELETE FROM items WHERE collection_id = %(id)s

-- name: remove_rest
-- Then everything else of the collection: its BM25 statistics, and the collection itself (its
-- documents, cache, ledger, learned recollections and jobs go with it: ON DELETE CASCADE).
WITH a AS (DELETE FROM bm25_levels WHERE collection_id = %(id)s),
     b AS (DELETE FROM bm25_level_deltas WHERE collection_id = %(id)s),
     c AS (DELETE FROM bm25_terms WHERE collection_id = %(id)s),
     d AS (DELETE FROM bm25_term_deltas WHERE collection_id = %(id)s),
     e AS (DELETE FROM bm25_impact_ref WHERE collection_id = %(id)s),
     f AS (DELETE FROM bm25_postings WHERE collection_id = %(id)s)
DELETE FROM collections WHERE id = %(id)s
