-- Named queries of API tokens (`pyramid tokens`, `pyramid serve`).

-- name: insert
INSERT INTO api_tokens (name, token_sha256, role, collections, can_write)
VALUES (%(name)s, %(sha256)s, '', %(collections)s, %(write)s)
RETURNING id

-- name: set_role
UPDATE api_tokens SET role = %(role)s WHERE id = %(id)s

-- name: role_name
SELECT format('kp_%%s_token_%%s', current_database(), %(id)s::bigint) AS role

-- name: find
-- The token presented to the server (by its hash); marks it used at most once a minute.
UPDATE api_tokens
SET last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < now() - interval '1 minute'
                        THEN now() ELSE last_used_at END
WHERE token_sha256 = %(sha256)s
RETURNING id, name, role, collections, can_write

-- name: by_id
SELECT id, name, role, collections, can_write, token_sha256 FROM api_tokens WHERE id = %(id)s

-- name: list
SELECT id, name, role, collections, can_write, created_at, last_used_at FROM api_tokens ORDER BY id

-- name: delete
DELETE FROM api_tokens WHERE id = %(id)s RETURNING id, role
