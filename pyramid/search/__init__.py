"""Search and what agents do with it: everything between a query and a cited item.

- ``hybrid``: hybrid search (BM25 + vector, fused; the ranking itself is ``pyramid_search()`` in
  ``sql/functions/search.sql``), ``Hit``, ``SearchOptions``;
- ``rerank``: which cross-encoder a search uses, loading it, scoring with it;
- ``evidence``: items as citable evidence (labels from search hits), the walk through the pyramid
  (``expand``), evidence ranking;
- ``tools``: ``search``/``expand``/``note`` as one tool session (one label table), a PydanticAI
  toolset and an MCP server;
- ``citations``: reading and checking ``[file, p. N]`` citations.

The package imports nothing itself, so importing one part costs only that part.
"""
