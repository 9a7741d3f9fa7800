"""File discovery: recursion, filters, hidden names, symlinks, and problems instead of exceptions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyramid.discover import Discovery, FileProblem, discover

pytestmark = pytest.mark.unit  # no PostgreSQL, no model: the fast layer


def tree(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {name}\n")


def rel(found: Discovery, root: Path) -> list[str]:
    return [path.relative_to(root.resolve()).as_posix() for path in found.files]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    tree(
        root,
        "a.md",
        "b.PDF",
        "notes/c.txt",
        "notes/deep/d.md",
        "drafts/e.md",
        "drafts/old/f.md",
        ".hidden.md",
        ".git/config",
        "notes/.cache/g.md",
    )
    return root


def test_walks_recursively_skips_hidden_sorted_absolute(docs: Path) -> None:
    found = discover([docs])
    assert rel(found, docs) == [
        "a.md",
        "b.PDF",
        "drafts/e.md",
        "drafts/old/f.md",
        "notes/c.txt",
        "notes/deep/d.md",
    ]
    assert all(path.is_absolute() and path == path.resolve() for path in found.files)
    assert found.problems == []


def test_explicit_file_is_taken_even_when_hidden(docs: Path) -> None:
    found = discover([docs / ".hidden.md", docs / "a.md"])
    assert rel(found, docs) == [".hidden.md", "a.md"]


def test_include_matches_names_and_relative_paths_case_insensitively(docs: Path) -> None:
    assert rel(discover([docs], include=["*.md"]), docs) == [
        "a.md",
        "drafts/e.md",
        "drafts/old/f.md",
        "notes/deep/d.md",
    ]
    assert rel(discover([docs], include=["*.pdf"]), docs) == ["b.PDF"]
    assert rel(discover([docs], include=["notes/*"]), docs) == ["notes/c.txt", "notes/deep/d.md"]
    assert rel(discover([docs], include=["**/*.txt"]), docs) == ["notes/c.txt"]


@pytest.mark.parametrize("pattern", ["drafts/**", "drafts", "drafts/*"])
def test_exclude_prunes_folders(docs: Path, pattern: str) -> None:
    assert rel(discover([docs], exclude=[pattern]), docs) == [
        "a.md",
        "b.PDF",
        "notes/c.txt",
        "notes/deep/d.md",
    ]


def test_exclude_beats_include(docs: Path) -> None:
    found = discover([docs], include=["*.md"], exclude=["d.md", "old/*", "**/old/**"])
    assert rel(found, docs) == ["a.md", "drafts/e.md"]


def test_same_file_twice_is_listed_once(docs: Path) -> None:
    (docs / "link-to-a.md").symlink_to(docs / "a.md")
    (docs / "notes-again").symlink_to(docs / "notes", target_is_directory=True)
    found = discover([docs, docs / "a.md", docs / "notes"])
    assert rel(found, docs) == [
        "a.md",
        "b.PDF",
        "drafts/e.md",
        "drafts/old/f.md",
        "notes/c.txt",
        "notes/deep/d.md",
    ]
    assert found.problems == []


def test_symlinks_not_followed_when_asked(docs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("# outside\n")
    (docs / "outside.md").symlink_to(outside)
    assert outside.resolve() in discover([docs]).files
    assert outside.resolve() not in discover([docs], follow_symlinks=False).files


def test_missing_path_dangling_link_and_loops_are_problems(docs: Path, tmp_path: Path) -> None:
    (docs / "dangling.md").symlink_to(tmp_path / "gone.md")
    (docs / "notes" / "loop").symlink_to(docs, target_is_directory=True)
    (docs / "self").symlink_to(docs / "self")
    missing = tmp_path / "nowhere"
    found = discover([docs, missing])
    reasons = {Path(problem.path).name: problem.reason for problem in found.problems}
    assert reasons["nowhere"] == "does not exist"
    assert reasons["dangling.md"].startswith("dangling symlink") and "gone.md" in reasons["dangling.md"]
    assert reasons["loop"].startswith("symlink loop")
    assert reasons["self"].startswith("symlink loop")
    assert len(found.problems) == 4
    assert rel(found, docs) == [
        "a.md",
        "b.PDF",
        "drafts/e.md",
        "drafts/old/f.md",
        "notes/c.txt",
        "notes/deep/d.md",
    ]


def test_fifo_is_a_problem_not_a_hang(docs: Path) -> None:
    os.mkfifo(docs / "pipe.md")
    found = discover([docs])
    assert found.problems == [FileProblem(str(docs / "pipe.md"), "not a regular file (a named pipe)")]


def test_explicit_file_filtered_by_name(docs: Path) -> None:
    assert discover([docs / "a.md"], exclude=["*.md"]).files == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_and_folder(docs: Path) -> None:
    (docs / "a.md").chmod(0)
    (docs / "notes").chmod(0)
    try:
        found = discover([docs])
    finally:
        (docs / "notes").chmod(0o755)
    reasons = {Path(problem.path).name: problem.reason for problem in found.problems}
    assert reasons == {
        "a.md": "cannot read file: permission denied",
        "notes": "cannot list folder: permission denied",
    }
    assert rel(found, docs) == ["b.PDF", "drafts/e.md", "drafts/old/f.md"]


def test_relative_paths_resolve(docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(docs)
    found = discover(["notes", "./a.md"])
    assert rel(found, docs) == ["a.md", "notes/c.txt", "notes/deep/d.md"]
