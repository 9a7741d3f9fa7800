"""Settings come from flags > environment > pyramid.toml, with range checks and no unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyramid.config import load_settings
from pyramid.errors import ConfigError


def test_defaults() -> None:
    settings = load_settings()
    assert settings.embedding_model == "all-MiniLM-L6-v2"
    assert settings.bm25_k1 == 1.2 and settings.bm25_b == 0.75
    assert settings.rrf_k == 60
    assert settings.dsn is None and settings.model is None


def test_flags_beat_environment_beat_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pyramid.toml"
    config.write_text("page_chars = 1000\nconcurrency = 3\nsearch_k = 7\n")
    monkeypatch.setenv("PYRAMID_CONFIG", str(config))
    monkeypatch.setenv("PYRAMID_CONCURRENCY", "5")
    settings = load_settings(search_k=9)
    assert settings.page_chars == 1000  # file
    assert settings.concurrency == 5  # environment beats file
    assert settings.search_k == 9  # flag beats file
    assert load_settings(search_k=None).search_k == 7  # a flag not given does not override


def test_unknown_key_in_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pyramid.toml"
    config.write_text("page_charz = 1000\n")
    monkeypatch.setenv("PYRAMID_CONFIG", str(config))
    with pytest.raises(ConfigError, match="page_charz"):
        load_settings()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("bm25_b", 1.5),
        ("concurrency", 0),
        ("page_chars", 10),
        ("text_search_config", "english; drop table x"),
    ],
)
def test_out_of_range_values_are_refused(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings(**{key: value})


def test_malformed_file_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pyramid.toml"
    config.write_text("page_chars = = 3\n")
    monkeypatch.setenv("PYRAMID_CONFIG", str(config))
    with pytest.raises(ConfigError):
        load_settings()


def test_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYRAMID_DSN", "postgresql://example/db")
    assert load_settings().dsn == "postgresql://example/db"
    monkeypatch.delenv("PYRAMID_DSN")
    assert load_settings().dsn is None
