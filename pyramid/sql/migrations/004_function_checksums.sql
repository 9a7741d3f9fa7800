-- 004: the SQL functions moved out of the migrations into pyramid/sql/functions/, one file per
-- function or small family. Each file is re-applied (CREATE OR REPLACE) when its checksum differs
-- from the one recorded here, after the migrations, under the migration lock.

CREATE TABLE pyramid_sql_functions (
    name        text PRIMARY KEY,               -- the file's name without .sql
    sha256      text NOT NULL,                  -- of the file as applied (placeholders filled in)
    applied_at  timestamptz NOT NULL DEFAULT now()
);
