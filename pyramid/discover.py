"""Find the files to ingest under the paths a user named.

Only the standard library is imported here: the CLI imports this module at start-up.

Folders are walked recursively. Hidden names (starting with a dot, ``.git`` among them) are
skipped inside a walk; a file named explicitly is taken even when hidden. ``include`` and
``exclude`` are glob patterns matched, case-insensitively, against a file's path relative to the
root it was found under (``drafts/old/a.md``) and against its name (``a.md``); ``**/`` may lead a
pattern, and ``drafts/**`` or ``drafts`` also prunes that folder. Anything that cannot be listed
or read becomes a ``FileProblem``; nothing here raises for a bad path.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

# `Path("https://x/a.pdf")` collapses the slashes into "https:/x/a.pdf", which then "does not exist":
# recognise a URL before it becomes a path and say what to do instead.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
URL_REASON = "URLs are not supported; download the file first"


@dataclass(frozen=True)
class FileProblem:
    path: str
    reason: str


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)  # absolute, resolved, de-duplicated, sorted
    problems: list[FileProblem] = field(default_factory=list)


def discover(
    paths: Sequence[str | Path],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_symlinks: bool = True,
) -> Discovery:
    """Every regular file under ``paths`` that passes the filters, and a problem for each failure."""
    walker = _Walker(
        include=[p.lower() for p in include],
        exclude=[p.lower() for p in exclude],
        follow_symlinks=follow_symlinks,
    )
    for given in paths:
        if isinstance(given, str) and _URL.match(given) and not os.path.exists(given):
            walker.problem(given, URL_REASON)
            continue
        walker.root(Path(given).expanduser())
    return Discovery(files=sorted(walker.found.values()), problems=walker.problems)


class _Walker:
    def __init__(self, *, include: list[str], exclude: list[str], follow_symlinks: bool) -> None:
        self.include = include
        self.exclude = exclude
        self.follow_symlinks = follow_symlinks
        self.found: dict[str, Path] = {}  # resolved path → Path; the same file via two routes counts once
        self.problems: list[FileProblem] = []
        self._walked: set[tuple[int, int]] = set()  # folders already listed, by (device, inode)

    def problem(self, path: Path | str, reason: str) -> None:
        self.problems.append(FileProblem(str(path), reason))

    def root(self, path: Path) -> None:
        path = Path(os.path.abspath(path))
        info = self._stat(path, named=True)
        if info is None:
            return
        if stat.S_ISDIR(info.st_mode):
            self._walk(path, path, (), info)
        elif self._wanted(path.name, path.name):
            self._file(path, info)

    def _stat(self, path: Path, *, named: bool = False) -> os.stat_result | None:
        """``stat`` that follows links, turning every failure into a problem."""
        try:
            link = path.is_symlink()
        except OSError as exc:
            self.problem(path, _os_reason(exc))
            return None
        if link and not self.follow_symlinks and not named:
            return None  # the caller asked not to follow links inside folders
        try:
            return path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.problem(path, "symlink loop: the link resolves to itself")
            elif link and exc.errno == errno.ENOENT:
                self.problem(path, f"dangling symlink: its target {os.readlink(path)!r} does not exist")
            elif exc.errno == errno.ENOENT:
                self.problem(path, "does not exist")
            else:
                self.problem(path, _os_reason(exc))
            return None

    def _walk(
        self, root: Path, folder: Path, ancestors: tuple[tuple[int, int], ...], info: os.stat_result
    ) -> None:
        identity = (info.st_dev, info.st_ino)
        if identity in ancestors:
            self.problem(folder, "symlink loop: the link points back to a folder that contains it")
            return
        if identity in self._walked:
            return  # reached again through another link: its files are already listed
        self._walked.add(identity)
        try:
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            self.problem(folder, f"cannot list folder: {_os_reason(exc)}")
            return
        chain = (*ancestors, identity)
        for name in names:
            if name.startswith("."):
                continue
            path = folder / name
            relative = path.relative_to(root).as_posix()
            entry_info = self._stat(path)
            if entry_info is None:
                continue
            if stat.S_ISDIR(entry_info.st_mode):
                if not self._pruned(name, relative):
                    self._walk(root, path, chain, entry_info)
            elif self._wanted(name, relative):
                self._file(path, entry_info)

    def _file(self, path: Path, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            self.problem(path, f"not a regular file ({file_kind(info.st_mode)})")
            return
        if not os.access(path, os.R_OK):
            self.problem(path, "cannot read file: permission denied")
            return
        resolved = path.resolve()
        self.found.setdefault(str(resolved), resolved)

    def _wanted(self, name: str, relative: str) -> bool:
        candidates = (name.lower(), relative.lower())
        if any(_match(c, p) for p in self.exclude for c in candidates):
            return False
        return not self.include or any(_match(c, p) for p in self.include for c in candidates)

    def _pruned(self, name: str, relative: str) -> bool:
        candidates = (name.lower(), relative.lower(), relative.lower() + "/")
        return any(_match(c, p) for p in self.exclude for c in candidates)


def _match(candidate: str, pattern: str) -> bool:
    if fnmatchcase(candidate, pattern):
        return True
    # "**/x" also matches "x" at the top of the root, as in gitignore.
    return pattern.startswith("**/") and fnmatchcase(candidate, pattern[3:])


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a plain file"
