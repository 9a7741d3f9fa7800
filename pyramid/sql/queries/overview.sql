-- Named queries of `pyramid overview`: what the collection holds.

-- name: documents
SELECT d.id, d.source, d.path, coalesce(nullif(d.title, ''), d.source) AS title, d.format, d.page_count,
       d.file_size, d.status
FROM documents d
WHERE d.status <> 'failed' AND pyramid_in_scope(d.collection_id)
ORDER BY d.source

-- name: formats
-- A feed file holds several documents: its bytes count once.
SELECT d.format, count(*) AS documents, count(DISTINCT d.path) AS files, sum(d.page_count) AS pages,
       (SELECT coalesce(sum(f.file_size), 0)
        FROM (SELECT DISTINCT e.path, e.file_size FROM documents e
              WHERE e.format = d.format AND e.status <> 'failed' AND pyramid_in_scope(e.collection_id)) f) AS bytes
FROM documents d
WHERE d.status <> 'failed' AND pyramid_in_scope(d.collection_id)
GROUP BY d.format
ORDER BY count(*) DESC, d.format

-- name: concepts
-- At most per_document concepts of each document (its first, in reading order), with embeddings.
SELECT c.id, c.document_id, c.title, c.text, c.embedding
FROM (SELECT i.*, row_number() OVER (PARTITION BY i.document_id ORDER BY i.ordinal, i.id) AS n
      FROM items i
      JOIN documents d ON d.id = i.document_id
      WHERE i.level = 'concept' AND i.embedding IS NOT NULL AND d.status <> 'failed'
        AND pyramid_in_scope(d.collection_id)) c
WHERE c.n <= %(per_document)s
ORDER BY c.document_id, c.ordinal, c.id
