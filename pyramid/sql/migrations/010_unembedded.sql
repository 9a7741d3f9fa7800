-- Items may be stored before their vector (`pyramid worker --stages convert,distill` leaves
-- embedding to `--stages embed` workers); this index finds them. It holds nothing once they are
-- embedded, which is almost always.
CREATE INDEX items_unembedded ON items (collection_id, id) WHERE embedding IS NULL;
