"""The error hierarchy: every failure a user should see as a message derives from PyramidError.

The CLI entry point (``pyramid.cli.main``) turns these into ``Error: …`` on stderr and an exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Usage

# Exit codes a cron job can trust.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some files failed, the others were stored; or a runtime failure
EXIT_USAGE = 2  # bad flags, bad configuration, incompatible database
EXIT_BUSY = 75  # another ingest/sync holds the database (EX_TEMPFAIL: try again later)


class PyramidError(Exception):
    """Base class for errors that carry a message meant for the user."""

    exit_code: int = EXIT_PARTIAL


class ConfigError(PyramidError):
    """Invalid configuration: flags, environment variables or pyramid.toml."""

    exit_code = EXIT_USAGE


class DatabaseError(PyramidError):
    """The database could not be reached, started or migrated."""


class EmbeddingMismatchError(PyramidError):
    """The database was built with another embedding model than the one configured."""

    exit_code = EXIT_USAGE


class EmbeddingError(PyramidError):
    """The embedding model could not be loaded or run: a configuration problem (a wrong name or
    path), so it exits 2 like the other configuration errors, whichever command met it."""

    exit_code = EXIT_USAGE


class ConversionError(PyramidError):
    """One input file could not be turned into pages. Always names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(PyramidError):
    """An LLM could not be configured or kept failing."""


class DistillationError(ModelError):
    """One document could not be distilled (the model kept failing or kept answering invalidly).
    Carries the tokens the attempt spent, so the report still counts them."""

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class NotFoundError(PyramidError):
    """A document or item named by the user does not exist."""

    exit_code = EXIT_USAGE


class CollectionError(PyramidError):
    """A collection that does not exist (or that this role cannot read), or a name that cannot be one."""

    exit_code = EXIT_USAGE


class BusyError(PyramidError):
    """Another ingest or sync is writing to the same database."""

    exit_code = EXIT_BUSY


class SearchError(PyramidError):
    """A search request that cannot be answered (bad level, bad mode, unusable reranker…)."""

    exit_code = EXIT_USAGE


class LeaseLostError(PyramidError):
    """A worker no longer holds the lease of the job it was writing (it expired and another
    worker took the job, or the job was finished): its write is rolled back."""
