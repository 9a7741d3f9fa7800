"""The ONNX encoder: exported from the bundled model, as close as int8 allows to torch fp32, cached
behind a checksum, accepted on a torch-built database by the probe, and used by a CLI search that
never imports torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from pyramid import Pyramid
from pyramid.embed import Embedder, model_location
from pyramid.errors import EmbeddingMismatchError
from pyramid.onnx_export import ensure, verified

SENTENCES = [
    "The P3 carries a 4.2 kWh lithium iron phosphate battery.",
    "One charge lasts for a ten-hour shift.",
    "Holm Orchards leased ten robots for the harvest.",
    "Interest rates rose in March.",
    "The cat sat on the mat.",
    "Voltane delays the new 5.0 kWh cells to September, so the P4 prototype moves to the fourth quarter.",
    "What is the capital of Australia?",
    "robot battery life",
    "Employees may work from home two days a week after their first three months, if their team lead "
    "agrees; field staff are excepted during the harvest season from August to October.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return Embedder(backend="torch", precision="fp32").encode_documents(SENTENCES)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_onnx_encodes_like_torch_fp32(cache: Path, torch_vectors: np.ndarray, precision: str) -> None:
    embedder = Embedder(backend="onnx", precision=precision, cache_dir=cache)
    vectors = embedder.encode_documents(SENTENCES)
    assert vectors.shape == torch_vectors.shape == (len(SENTENCES), 384)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() >= (0.99 if precision == "int8" else 0.9999), cosines
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # A query encodes as the same text does as a document (the model has no prompts), and a text's
    # vector does not depend on the texts encoded with it: int8 quantizes activations with one scale
    # per input, so it encodes each text alone (before, the same text moved to cosine 0.990).
    alone = embedder.encode_queries(SENTENCES[:1])[0]
    assert float(alone @ vectors[0]) >= 0.99999
    shuffled = embedder.encode_documents([SENTENCES[-1], *SENTENCES[1:3], SENTENCES[0]])
    assert np.abs(shuffled[-1] - vectors[0]).max() <= 1e-6
    assert np.abs(shuffled[0] - vectors[-1]).max() <= 1e-6


def test_cache_is_rebuilt_when_its_checksum_does_not_match(cache: Path) -> None:
    location = model_location("all-MiniLM-L6-v2")
    args = {"model_name": "all-MiniLM-L6-v2", "location": location, "precision": "int8"}
    folder = ensure(cache_root=cache, **args)
    good = json.loads((folder / "manifest.json").read_text())["sha256"]["model.onnx"]
    with (folder / "model.onnx").open("r+b") as fh:  # flip bytes inside the graph
        fh.seek(1000)
        fh.write(b"\x00corrupt\x00")
    os.utime(folder / "model.onnx", ns=(1, 1))
    assert verified(folder, **args) is None
    again = ensure(cache_root=cache, **args)
    assert again == folder
    assert verified(folder, **args) is not None
    assert json.loads((folder / "manifest.json").read_text())["sha256"]["model.onnx"] == good


def _add_items(kp: Pyramid) -> None:
    from pyramid.store import NewItem, write_items

    async def add() -> None:
        vectors = await kp._rt.embedder.aencode_documents(SENTENCES)
        async with kp._rt.db.connection() as conn, conn.transaction():
            items = [
                NewItem(key=str(i), level="insight", text=t, embedding=v)
                for i, (t, v) in enumerate(zip(SENTENCES, vectors, strict=True))
            ]
            await write_items(conn, None, items)

    kp._portal.call(add())


def test_a_torch_database_opens_with_onnx_after_the_probe(fresh_dsn: str, cache: Path) -> None:
    with Pyramid.open(dsn=fresh_dsn, embedding_backend="torch", embedding_precision="fp32") as kp:
        assert (kp.build.embedding_backend, kp.build.embedding_precision) == ("torch", "fp32")
        _add_items(kp)
    said: list[str] = []
    with Pyramid.open(
        dsn=fresh_dsn,
        embedding_backend="onnx",
        encoder_cache_dir=cache,
        progress=lambda e: said.append(e.message or ""),
    ) as kp:
        assert kp._rt.embedder.backend == "onnx"
        hits = kp.search("how long does the battery last", mode="vector", k=3)
        assert hits[0].text.startswith("One charge lasts") or "battery" in hits[0].text
        record = kp.stats().encoder
    assert any("re-encodes" in s and "accepted" in s for s in said), said
    assert record["database"] == {"backend": "torch", "precision": "fp32"}
    probe = record["probes"]["onnx/int8"]
    assert probe["ok"] and probe["items"] == len(SENTENCES) and probe["mean"] >= 0.99


def test_a_probe_that_disagrees_is_refused_with_the_fix(fresh_dsn: str, cache: Path) -> None:
    with Pyramid.open(dsn=fresh_dsn, embedding_backend="torch") as kp:
        _add_items(kp)

        async def scramble() -> None:  # every item gets the first one's vector
            async with kp._rt.db.connection() as conn:
                await conn.execute(
                    "UPDATE items SET embedding = (SELECT embedding FROM items ORDER BY id LIMIT 1)"
                )

        kp._portal.call(scramble())
    with pytest.raises(EmbeddingMismatchError) as info:
        Pyramid.open(dsn=fresh_dsn, embedding_backend="onnx", encoder_cache_dir=cache)
    assert "pyramid reembed --embedding-backend onnx" in str(info.value)


def test_an_empty_database_opens_with_another_backend(fresh_dsn: str, cache: Path) -> None:
    # `pyramid db start` records the default encoder before anything is stored; a first ingest with
    # --embedding-backend torch then has nothing to probe (it failed reshaping the empty sample).
    with Pyramid.open(dsn=fresh_dsn, embedding_backend="onnx", encoder_cache_dir=cache) as kp:
        assert (kp.build.embedding_backend, kp.build.embedding_precision) == ("onnx", "int8")
    with Pyramid.open(dsn=fresh_dsn, embedding_backend="torch") as kp:
        _add_items(kp)
        assert kp.search("battery charge", mode="vector", k=1)


def test_another_model_is_still_refused_whatever_the_backend(fresh_dsn: str, cache: Path) -> None:
    with Pyramid.open(dsn=fresh_dsn, embedding_backend="onnx", encoder_cache_dir=cache):
        pass
    with pytest.raises(EmbeddingMismatchError):
        Pyramid.open(dsn=fresh_dsn, embedding_model="/models/some-other-model", embedding_backend="onnx")


def test_cli_search_encodes_without_torch_and_matches_torch(fresh_dsn: str, cache: Path) -> None:
    with Pyramid.open(dsn=fresh_dsn, embedding_backend="torch") as kp:
        _add_items(kp)
        expected = [hit.id for hit in kp.search("battery charge", mode="vector", k=5)]
    # Record the probe once, as a user's first onnx command would. The export into `cache` is made
    # here: this process may hold an ONNX encoder loaded from another cache folder by an earlier
    # test (encoders are shared per process by model, backend and precision), so the probe alone
    # need not have written it.
    ensure(
        model_name="all-MiniLM-L6-v2",
        location=model_location("all-MiniLM-L6-v2"),
        cache_root=cache,
        precision="int8",
    )
    with Pyramid.open(dsn=fresh_dsn, embedding_backend="onnx", encoder_cache_dir=cache):
        pass
    hook = Path(cache) / "sitecustomize.py"
    hook.write_text(
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('HEAVY=' + ','.join(m for m in "
        "('torch', 'sentence_transformers', 'transformers') if m in sys.modules) + '\\n'))\n"
    )
    done = run_cli(
        "search",
        "battery charge",
        "--mode",
        "vector",
        "-k",
        "5",
        "--json",
        dsn=fresh_dsn,
        env={
            "PYRAMID_EMBEDDING_BACKEND": "onnx",
            "PYRAMID_ENCODER_CACHE_DIR": str(cache),
            "PYTHONPATH": f"{cache}{os.pathsep}{os.environ.get('PYTHONPATH', '')}{os.pathsep}{Path(__file__).parent.parent}",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY=\n" in done.stderr, done.stderr
    got = [hit["id"] for hit in json.loads(done.stdout)]
    assert got == expected


def test_the_first_export_says_so_once_on_stderr(fresh_dsn: str, tmp_path: Path) -> None:
    # A fresh encoder cache: the first command exports (tens of seconds) and must not sit silent.
    env = {"PYRAMID_ENCODER_CACHE_DIR": str(tmp_path / "encoders")}
    notice = "Preparing the int8 ONNX encoder from all-MiniLM-L6-v2 (once per data dir"
    (tmp_path / "a.md").write_text("# Tides\n\nThe spring tide comes twice a month.")
    (tmp_path / "b.md").write_text("# Winds\n\nThe trade winds blow from the east.")
    first = run_cli("ingest", str(tmp_path / "a.md"), "--json", dsn=fresh_dsn, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(notice) == 1, first.stderr
    assert "Loading weights" not in first.stderr, first.stderr
    summary = json.loads(first.stdout)  # stdout holds the JSON alone
    assert summary["encoder"]["backend"] == "onnx" and notice not in first.stdout
    assert (tmp_path / "encoders" / "all-MiniLM-L6-v2-int8" / "manifest.json").exists()
    again = run_cli("ingest", str(tmp_path / "b.md"), "--json", dsn=fresh_dsn, env=env)
    assert again.returncode == 0, again.stderr
    assert notice not in again.stderr, again.stderr
