"""Old import path of :mod:`pyramid.store.database`, kept only for the modules that still import it
from here (search.py, api.py); new code imports from ``pyramid.store.database``."""

from .store.database import BuildInfo, Database, start_embedded

__all__ = ["BuildInfo", "Database", "start_embedded"]
