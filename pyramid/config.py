"""Configuration: one Pydantic model, read from flags > environment (``PYRAMID_*``) > ``pyramid.toml``.

Nothing here is built at import time: ``load_settings()`` is called by ``Pyramid.open`` and the CLI
with the flags the user gave, so an environment change between two calls is always seen.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError
from .models import ASK_LEVELS, Level
from .models import LEVELS as LEVELS  # defined in models; imported from here by older code

SearchMode = Literal["hybrid", "bm25", "vector"]
Fusion = Literal["rrf", "weighted"]
# How structured output is asked of a model: PydanticAI's ToolOutput, NativeOutput (response_format
# with a JSON schema) or PromptedOutput (the schema in the prompt); auto picks by provider.
OutputMode = Literal["auto", "tool", "native", "prompted"]
EmbeddingBackend = Literal["auto", "torch", "onnx"]
EmbeddingPrecision = Literal["fp32", "int8", "fp16"]

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
CONFIG_FILE_ENV = "PYRAMID_CONFIG"
_REGCONFIG = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


# The names a collection may have (the same rule as the CHECK of migration 008).
COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("knowledge-pyramid", appauthor=False))


def config_file() -> Path:
    """The TOML file settings are read from: ``$PYRAMID_CONFIG`` or ``./pyramid.toml``."""
    return Path(os.environ.get(CONFIG_FILE_ENV) or "pyramid.toml")


class Settings(BaseSettings):
    """Every knob of knowledge-pyramid. Environment variables are the field names, upper-cased, with
    the ``PYRAMID_`` prefix (``PYRAMID_DSN``, ``PYRAMID_EMBEDDING_MODEL``, …)."""

    model_config = SettingsConfigDict(
        env_prefix="PYRAMID_", extra="forbid", validate_assignment=True, frozen=False
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(default_factory=default_data_dir, description="embedded PostgreSQL location")
    dsn: str | None = Field(
        None, description="external PostgreSQL (with pgvector) instead of the embedded one"
    )
    pool_size: int = Field(4, ge=1, le=64, description="connections kept open per process")
    role: str | None = Field(
        None, description="PostgreSQL role every connection runs as (SET ROLE), under its row-level security"
    )
    collection: str = Field(
        "default",
        description="the collection to work in; several, comma-separated, are read together (written: the first)",
    )

    # --- embeddings ----------------------------------------------------------------------
    embedding_model: str = Field(DEFAULT_EMBEDDING_MODEL, min_length=1)
    embedding_batch_size: int = Field(32, ge=1, le=4096)
    embedding_device: str | None = Field(None, description="cpu, cuda, cuda:1, mps; default: best available")
    embedding_backend: EmbeddingBackend = Field(
        "auto",
        description="torch (sentence-transformers), onnx (ONNX Runtime, CPU); auto: torch on CUDA, else onnx",
    )
    embedding_precision: EmbeddingPrecision | None = Field(
        None, description="onnx: int8 (default) or fp32; torch: fp16 (default on CUDA) or fp32"
    )
    encoder_cache_dir: Path | None = Field(
        None, description="where exported ONNX encoders are kept (default: <data_dir>/encoders)"
    )
    encoder_nice: int = Field(
        10, ge=0, le=19, description="CPU priority of the encoder thread below the event loop's (0: same)"
    )

    # --- conversion ----------------------------------------------------------------------
    page_chars: int = Field(4000, ge=200, le=1_000_000, description="page size cap for formats without pages")
    max_file_mb: float = Field(50.0, gt=0, le=100_000)
    convert_workers: int = Field(2, ge=1, le=64)

    # --- search --------------------------------------------------------------------------
    text_search_config: str = Field("english", description="PostgreSQL text search configuration")
    bm25_k1: float = Field(1.2, ge=0, le=10)
    bm25_b: float = Field(0.75, ge=0, le=1)
    # Weighted (TM2C2) rather than RRF: on PhantomWiki it kept 0.39 nDCG@10 where RRF fell to 0.19
    # beside a weak dense leg (benchmarks/quality.py); a leg whose scores are all alike adds little.
    fusion: Fusion = "weighted"
    rrf_k: int = Field(60, ge=1, le=10_000)
    weight_bm25: float = Field(0.5, ge=0, le=1, description="weighted fusion: share of the BM25 leg")
    search_k: int = Field(10, ge=1, le=1000)
    candidates: int = Field(100, ge=1, le=10_000, description="hits per leg and level before fusion")
    search_parallel: int = Field(
        4,
        ge=1,
        le=64,
        description="levels one search runs at once, each on its own connection (1: one SQL call)",
    )
    reranker: str | None = Field(None, description="cross-encoder name or path; off when empty")
    rerank_top: int = Field(50, ge=1, le=1000)

    # --- LLM -----------------------------------------------------------------------------
    model: str | None = Field(None, description="PydanticAI model string; none → extractive distiller")
    concurrency: int = Field(8, ge=1, le=512, description="documents distilled at once")
    llm_concurrency: int | None = Field(
        None,
        ge=1,
        le=512,
        description="documents talking to the model at once across every worker on the database",
    )
    request_timeout: float = Field(
        120.0,
        gt=0,
        description="seconds per model request; a timed-out request is retried with twice as long",
    )
    output_mode: OutputMode = Field(
        "auto",
        description="how structured output is asked: tool, native (JSON schema), prompted; auto picks by "
        "provider and falls back once when the model rejects the request shape",
    )
    # Per-step output caps: a small model that rambles is cut off instead of filling its context.
    insights_max_tokens: int = Field(1024, ge=64, le=200_000, description="output tokens per insight window")
    concepts_max_tokens: int = Field(1536, ge=64, le=200_000, description="output tokens per concept call")
    abstract_max_tokens: int = Field(768, ge=64, le=200_000, description="output tokens of the abstract call")
    recollections_max_tokens: int = Field(
        1536, ge=64, le=200_000, description="output tokens per recollection call"
    )
    answer_max_tokens: int = Field(1024, ge=64, le=200_000, description="output tokens per ask model request")
    retries: int = Field(4, ge=0, le=20)
    retry_backoff: float = Field(
        1.0, ge=0, le=300, description="first wait before retrying a failed LLM call (s)"
    )
    output_retries: int = Field(2, ge=0, le=10, description="times an invalid LLM output is sent back to fix")
    concept_batch: int = Field(
        80, ge=5, le=5000, description="insights per concept call at most (then merged)"
    )
    concept_pages: int = Field(
        20,
        ge=1,
        le=10_000,
        description="pages per concept call: batches follow page ranges, so edits stay local",
    )
    concept_merge_batch: int = Field(120, ge=4, le=5000, description="concepts per merge call")
    abstract_insights: int = Field(200, ge=10, le=10_000, description="insights shown to the abstract call")
    recollection_batch: int = Field(8, ge=1, le=200, description="documents per recollection call")
    ask_request_limit: int = Field(
        20, ge=2, le=1000, description="model requests one `ask` may make (research + answer)"
    )
    ask_token_limit: int = Field(60_000, ge=1000, description="tokens (input + output) one `ask` may spend")

    # --- ask -------------------------------------------------------------------------------
    ask_levels: Annotated[list[Level], NoDecode] = Field(
        default_factory=lambda: list(ASK_LEVELS),
        min_length=1,
        description="levels the search agent may search",
    )
    ask_answer_tokens: int = Field(
        12_000,
        ge=500,
        le=1_000_000,
        description="tokens kept back from research for the answer (at most half)",
    )
    ask_answer_retries: int = Field(
        2, ge=0, le=10, description="times an answer that cites something outside the evidence is sent back"
    )
    ask_evidence: int = Field(12, ge=1, le=200, description="evidence items handed to the answer step")
    ask_evidence_chars: int = Field(
        12_000, ge=500, le=1_000_000, description="their text, in characters, at most"
    )
    ask_min_score: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="no-model ask: below this cosine of the best evidence to the question, say nothing relevant was found",
    )

    ask_learn: bool = Field(
        False, description="store the finding of each answer as a learned recollection (ask --learn)"
    )
    learn_threshold: float = Field(
        0.9,
        ge=0.5,
        le=1.0,
        description="cosine at which a new finding repeats a learned recollection (it is revised)",
    )

    # --- distillation (both distillers) ----------------------------------------------------
    abstract_words: int = Field(120, ge=20, le=2000, description="upper bound on an abstract's length")

    # --- extractive distiller (no LLM) -----------------------------------------------------
    duplicate_threshold: float = Field(
        0.92, ge=0.5, le=1.0, description="cosine above which a sentence repeats an earlier one"
    )
    insights_per_concept: int = Field(10, ge=1, le=1000, description="k-means k = insights / this")
    max_concepts: int = Field(64, ge=1, le=10_000, description="concepts per document at most")
    recollection_threshold: float = Field(
        0.7, ge=0.0, le=1.0, description="cosine linking concepts of different documents"
    )
    recollection_size: int = Field(8, ge=2, le=1000, description="concepts in one recollection at most")

    @field_validator("text_search_config")
    @classmethod
    def _regconfig(cls, value: str) -> str:
        if not _REGCONFIG.match(value):
            raise ValueError(f"not a text search configuration name: {value!r}")
        return value

    @field_validator("ask_levels", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        # PYRAMID_ASK_LEVELS=insight,concept reads like the --levels flag; a list passes through.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("dsn", "model", "reranker", "embedding_device", "role", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("collection", mode="after")
    @classmethod
    def _collection_names(cls, value: str) -> str:
        names = [part.strip() for part in value.split(",") if part.strip()]
        for name in names:
            if not COLLECTION_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a collection name (letters, digits, '_', '.', '-'; "
                    "starting with a letter or digit; at most 63 characters)"
                )
        return ",".join(dict.fromkeys(names)) or "default"

    @property
    def collections(self) -> tuple[str, ...]:
        """The collections read, the first of them the one written to."""
        return tuple(self.collection.split(","))

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("embedding_precision", "encoder_cache_dir", mode="before")
    @classmethod
    def _blank_means_default(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def encoder_cache(self) -> Path:
        return (self.encoder_cache_dir or self.data_dir / "encoders").expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import TomlConfigSettingsSource

        # The file is looked up when settings are built, never at import.
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file())

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 2**20)


def load_settings(**flags: Any) -> Settings:
    """Build settings; flags that are ``None`` were not given and do not override anything."""
    given = {key: value for key, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration ({problems})") from None
    except (OSError, ValueError) as exc:  # unreadable or malformed pyramid.toml
        raise ConfigError(f"cannot read configuration file {str(config_file())!r}: {exc}") from None
