-- 009: API tokens of `pyramid serve`, each mapped to a PostgreSQL role. A token is shown once when
-- it is made; only its sha256 is kept. Every request that presents it runs as its role, so the
-- row-level security of migration 008 decides what the request sees. Only the owner reads this
-- table: no collection role is granted anything on it.
CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL DEFAULT '',
    token_sha256  text NOT NULL UNIQUE,
    role          text NOT NULL,                  -- kp_<database>_token_<id>, made with the token
    collections   text[] NOT NULL,                -- what the token's requests read (written: the first)
    can_write     boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
