"""The journal folder and who owns each file in it: :func:`check_directory`,
:func:`create_file` (a writer's), :func:`claimable_files` (the worker's).

A journal file is ``<name>-<pid>-<random>.journal``. Its writer holds an
exclusive ``flock`` on it while it writes; once the writer closes it (the
file is *sealed*) or dies (the kernel drops the lock, whatever killed the
process), whoever takes the lock with ``LOCK_NB`` owns it: the worker. A lock
belongs to an open file, not to a process, so a worker thread of the
writer's own process cannot take a file its writer still holds either. The
folder needs a local file system, where ``flock`` works.

The worker posts what it reads, signed, to webhook URLs written in the
events: a journal planted in the folder by another user would be delivered
as if it came from the tracked mail. So the folder must belong to the user
of the process and be closed to everyone else (:func:`check_directory`).
"""

from __future__ import annotations

import errno
import os
import stat
import typing as t

from ..exceptions import ConfigurationError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Whether this platform has ``flock``, which a journal needs.
SUPPORTED = fcntl is not None

#: Extension of journal files.
SUFFIX = ".journal"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | _NOFOLLOW
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW


def check_directory(path: str | os.PathLike[str]) -> str:
    """Create the journal folder ``path`` (mode ``0700``), or check that the
    existing one is safe to trust, and return its absolute path.

    :raise ConfigurationError: ``path`` is a symbolic link, not a folder,
        owned by another user than this process's, or open to its group or
        others (any of the mode bits ``0o077``).
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    else:
        # The umask only removes bits; this puts the owner's back if it took
        # them too.
        os.chmod(path, 0o700)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise ConfigurationError(
            f"The journal folder {path!r} is a symbolic link; configure the"
            " folder it points to (its real path) instead."
        )
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigurationError(f"The journal folder {path!r} is not a folder.")
    uid = os.geteuid()
    if info.st_uid != uid:
        raise ConfigurationError(
            f"The journal folder {path!r} belongs to user id {info.st_uid}, not"
            f" to this process's user (id {uid}): anyone who can write there"
            " can plant events. Run `chown` on it, or configure a folder of"
            " this user's."
        )
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"The journal folder {path!r} is open to its group or others (mode"
            f" {stat.S_IMODE(info.st_mode):#o}): anyone who can write there can"
            f" plant events. Run `chmod 700 {path}`."
        )
    return path


def same_file(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd``: a lock taken on
    a file that another process deleted meanwhile protects nothing."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def create_file(directory: str, name: str) -> tuple[int, str]:
    """Create and lock a new journal file of this process in ``directory``;
    return its descriptor (open for appending) and path.

    :raise OSError: it cannot be created (a full disk, a removed folder).
    """
    for _ in range(10):
        path = os.path.join(
            directory, f"{name}-{os.getpid()}-{os.urandom(8).hex()}{SUFFIX}"
        )
        fd = os.open(path, _CREATE_FLAGS, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # A worker may have taken the new, not yet locked, empty file for
            # an orphan and deleted it; then try another name.
            if same_file(fd, path):
                return fd, path
        except BlockingIOError:
            pass  # that worker holds it for a moment
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise OSError(errno.EAGAIN, "Could not create a journal file", directory)


class Claimed(t.NamedTuple):
    """A journal file this process has locked: sealed, or orphaned."""

    #: The descriptor (read only); closing it releases the file.
    fd: int
    path: str
    #: The file name.
    name: str
    #: The inode, which tells this file from a later one of the same name.
    inode: int


def journal_names(directory: str) -> list[tuple[str, int]]:
    """The journal files of ``directory`` as (name, inode), oldest first."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
                    try:
                        mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                    except FileNotFoundError:
                        continue  # deleted meanwhile
                    found.append((mtime, entry.name, entry.inode()))
    except FileNotFoundError:
        return []
    found.sort()
    return [(name, inode) for _, name, inode in found]


def claim(directory: str, name: str) -> Claimed | None:
    """Lock the journal file ``name`` of ``directory`` for reading, or
    ``None`` when its writer is alive or another worker has it (or had it,
    and deleted it)."""
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None  # deleted by another worker meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if same_file(fd, path):
            return Claimed(fd, path, name, os.fstat(fd).st_ino)
    except BlockingIOError:
        pass  # its writer is alive, or another worker reads it
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def release(claimed: Claimed, *, delete: bool = False) -> None:
    """Close a claimed file, deleting it first when ``delete``: deleting it
    before unlocking it means no one else ever claims it again."""
    try:
        if delete:
            os.unlink(claimed.path)
    finally:
        os.close(claimed.fd)
