"""Where results are written: one policy for every command and for the library.

A training run can take hours; what it writes must neither fail after the work nor
destroy earlier work. So, for every output of every command:

* **Checked before any work** (:func:`check_output`, :func:`check_output_dir`): a path
  that is a directory, whose folder is missing, or where no file can be created, is a
  ``ValueError`` naming the option, before any data is loaded or epoch trained.
* **No two outputs of one run share a path** (:func:`check_outputs`), and no output is
  one of the run's inputs, except a checkpoint being resumed, which the run goes on
  writing. Paths are compared as the files they name (links and ``..`` resolved).
* **An existing checkpoint is never replaced** (:func:`check_new_checkpoint`) except by
  resuming it or by an explicit ``--overwrite``; and while a run writes a checkpoint it
  holds a lock on it (:func:`hold_lock`), so a second run on the same file is refused
  instead of silently interleaving with the first.
* **Written whole and atomically** (:func:`atomic_write_bytes`): the bytes go to a
  temporary file in the destination's folder, which then replaces the destination;
  readers, a crash or a full disk see the old file or the new one, never half of one. A
  symbolic link is written *through*: its target is replaced (atomically, in the
  target's folder) and the link stays a link. A destination that is not a regular file
  (a device such as ``/dev/stdout``, a pipe) cannot be replaced atomically and is
  refused with that reason, never replaced.
* **A write that fails mid-run** (a full disk, an I/O error, permissions changed) is a
  :class:`WriteError`: one line naming the file and the cause, the temporary file
  removed, the previous file untouched; the commands go on writing their other outputs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


class WriteError(OSError, ValueError):
    """An output could not be written (disk full, I/O error, permission, its folder
    gone): names the file. The previous content of the file, if any, is untouched, and
    no temporary file is left behind. (Also a ``ValueError``, as every error gpunet
    reports in one line is.)"""

    def __init__(self, path: PathLike, cause: BaseException, option: str = "") -> None:
        code = getattr(cause, "errno", None)
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(code, reason, str(path))
        self.path, self.option, self.cause = Path(path), option, cause

    def __str__(self) -> str:
        what = f"{self.option} {self.path}" if self.option else str(self.path)
        return f"cannot write {what}: {self.strerror}"


def destination(path: PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path``, or the target of a symbolic link
    (followed to its end, relative links resolved against the link's folder)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def name_limit(folder: Path) -> int:
    """The longest file name ``folder``'s file system takes, in bytes (255 where it
    does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _cut(name: str, room: int) -> str:
    """``name`` cut to at most ``room`` bytes as the file system stores it, never
    inside a UTF-8 character."""
    return os.fsencode(name)[:max(room, 0)].decode("utf-8", "ignore")


def hidden_name(folder: Path, name: str, suffix: str, extra: int = 0) -> str:
    """``.NAME<suffix>``, the hidden companion of file ``name`` (a lock, a temporary
    file), fitted to ``folder``'s name limit with ``extra`` bytes left for what
    ``mkstemp`` adds.

    A name that is valid on its own (up to 255 bytes) must not be refused because
    its companion's is longer: where ``.NAME<suffix>`` does not fit, NAME is cut and a
    digest of the whole name keeps companions of different long names apart.
    """
    whole = f".{name}{suffix}"
    room = name_limit(folder) - extra
    if len(os.fsencode(whole)) <= room:
        return whole
    digest = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    fixed = len(os.fsencode(f".{digest}{suffix}"))
    return f".{_cut(name, room - fixed)}{digest}{suffix}"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def check_output(path: PathLike, option: str) -> Path:
    """Fail now, not after an hour of training, if ``path`` cannot be written.

    ``ValueError`` naming ``option`` when ``path`` (or the file a link points to) is a
    directory or anything but a regular file, its folder is missing, the file is not
    writable, or no file can be created in its folder (tried, then removed). Returns
    the file that writing ``path`` will replace (:func:`destination`).
    """
    path = Path(path)
    target = _check_target(path, option)
    through = f" (a link to {target})" if target != path else ""
    _probe_write(_folder(target), target.name, f"{option} {path}{through}")
    return target


def _check_target(path: Path, option: str) -> Path:
    """:func:`check_output` without the write probe: the file a write to ``path``
    replaces, checked to be a writable regular file (or missing, in an existing
    folder)."""
    target = destination(path)
    through = f" (a link to {target})" if target != path else ""
    try:
        mode: Optional[int] = os.stat(target).st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise ValueError(f"{option} {path}{through}: is a directory; give a file name.")
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"{option} {path}{through} is {_kind(mode)}, not a file; outputs "
                         "are written whole and atomically (a new file replaces the old), "
                         "which only a regular file allows: give a file path.")
    folder = _folder(target)
    if not folder.is_dir():
        raise ValueError(f"{option} {path}{through}: directory {folder} does not exist; "
                         "create it or choose another path.")
    if mode is not None and not os.access(target, os.W_OK):
        raise ValueError(f"{option} {path}{through}: the file is not writable.")
    return target


def check_output_files(folder: Path, names: Collection[str], option: str) -> None:
    """Fail now if any of the files ``names`` in existing directory ``folder`` cannot
    be written: one that is a directory or not a regular file (or a link to one), or
    not writable; and a file must be creatable in ``folder`` (tried once)."""
    for name in names:
        _check_target(folder / name, option)
    _probe_write(folder, max(names, key=len, default="gpunet"), f"{option} {folder}")


def check_output_dir(path: PathLike, option: str) -> Path:
    """Fail now if files cannot be written into directory ``path`` (created later if
    missing): ``ValueError`` naming ``option`` when it is a file, or when it (or, if it
    does not exist yet, the folder it would be made in) is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} exists and is not a directory.")
    if path.is_symlink() and not path.exists():  # it cannot be made where the link is
        raise ValueError(f"{option} {path} is a symbolic link to {os.readlink(path)}, "
                         "which does not exist; make that folder, or give another.")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, so the directory cannot "
                         "be made.")
    _probe_write(existing if existing.exists() else Path("."), "gpunet", f"{option} {path}")
    return path


def _probe_write(folder: Path, name: str, what: str) -> None:
    """Create and remove a file beside ``name`` in ``folder`` (exclusively, never
    through a link: ``mkstemp``): ``ValueError`` starting with ``what`` when that fails
    (permissions, a read-only or full file system)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=hidden_name(folder, name, ".", extra=14),
                                   suffix=".check", dir=folder)
    except OSError as exc:
        raise ValueError(f"{what}: cannot write in {folder} ({exc.strerror or exc}).") from None
    os.close(fd)
    os.unlink(tmp)


def same_file_key(path: PathLike) -> str:
    """What two paths must share to name the same file: the fully resolved path."""
    return os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def check_outputs(outputs: Mapping[str, Optional[PathLike]],
                  inputs: Optional[Mapping[str, Optional[PathLike]]] = None,
                  directories: Optional[Mapping[str, Optional[PathLike]]] = None,
                  may_share: Collection[tuple[str, str]] = ()) -> None:
    """The output policy for one run, before any work.

    ``outputs`` maps each option (``"--save"``) to its file path (or ``None`` when not
    given) and ``directories`` each directory option to its path; every one is checked
    (:func:`check_output`, :func:`check_output_dir`). Two outputs naming one file, an
    output naming one of the run's ``inputs``, or a file output inside an output
    directory, is a ``ValueError`` naming both options. ``may_share`` lists the pairs
    of options that may name one file (``("--resume", "--checkpoint")``: a resumed run
    goes on writing its checkpoint).
    """
    given = {o: p for o, p in outputs.items() if p is not None}
    for option, file in given.items():
        check_output(file, option)
    for option, folder in (directories or {}).items():
        if folder is not None:
            check_output_dir(folder, option)
    allowed = {frozenset(pair) for pair in may_share}
    seen: dict[str, str] = {}
    for option, named in [*(inputs or {}).items(), *given.items()]:
        if named is None:
            continue
        key = same_file_key(named)
        both_read = option in (inputs or {}) and seen.get(key) in (inputs or {})
        if key in seen and frozenset((seen[key], option)) not in allowed and not both_read:
            what = "an input and an output" if option in (inputs or {}) or seen[key] in (
                inputs or {}) else "two outputs"
            raise ValueError(f"{seen[key]} and {option} name the same file ({named}): "
                             f"{what} of one run may not share a path, one would replace "
                             "the other; give each its own path.")
        seen.setdefault(key, option)
    for option, folder in (directories or {}).items():
        if folder is None:
            continue
        root = same_file_key(folder) + os.sep
        for key, other in seen.items():
            if key.startswith(root) and other not in (inputs or {}):  # outputs only
                raise ValueError(f"{other} {key} is inside {option} {folder}, where files "
                                 "are written; choose another path for one of them.")


def check_new_checkpoint(path: PathLike, option: str, resumed: Optional[PathLike],
                         overwrite: bool) -> None:
    """An existing checkpoint is never replaced by another run: only by resuming it
    (``resumed`` names the same file) or with ``overwrite``."""
    if overwrite or not os.path.lexists(path):
        return
    if resumed is not None and same_file_key(resumed) == same_file_key(path):
        return
    raise ValueError(f"{option} {path} already exists (another run's checkpoint); continue "
                     f"that run with --resume {path}, choose another path, or give "
                     "--overwrite to replace it.")


# ------------------------------------------------------------------ locks
_held: dict[str, tuple[int, int]] = {}  # same_file_key -> (fd, depth), this process
_held_lock = threading.Lock()


@contextlib.contextmanager
def hold_lock(path: PathLike, option: str = "checkpoint") -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` names while the block runs.

    The lock is ``flock`` on a hidden file beside the destination
    (``.NAME.lock``, removed when released), since the checkpoint itself is replaced
    at every write. Another process holding it is a ``ValueError`` naming it; the same
    process may take it again (the CLI holds it from the start of the command, the
    training loop once more around the epochs). Where the file system has no locks the
    block runs unlocked.

    The lock file is created exclusively and never through a link (``O_EXCL |
    O_NOFOLLOW``); an existing one is opened without following a link and must be a
    plain file with no other name (one hard link), so a link planted where the lock
    goes cannot make the run truncate and write into another file.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks to take
        yield
        return
    key = same_file_key(destination(path))
    with _held_lock:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            lock = None
        else:
            lock = lock_path(Path(key))
    if lock is not None:
        taken = _take_lock(fcntl, lock, path, option)
        if taken is None:  # no locking here (a read-only folder, no flock): run unlocked
            yield
            return
        with _held_lock:
            _held[key] = (taken, 1)
    try:
        yield
    finally:
        with _held_lock:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                del _held[key]
                with contextlib.suppress(OSError):
                    os.unlink(lock_path(Path(key)))
                os.close(fd)


def lock_path(target: Path) -> Path:
    """The lock file of checkpoint ``target``: ``.NAME.lock`` beside it (fitted to the
    file system's name limit)."""
    folder = _folder(target)
    return folder / hidden_name(folder, target.name, ".lock")


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _take_lock(fcntl: Any, lock: Path, path: PathLike, option: str) -> Optional[int]:
    """Open (creating it exclusively if missing) and ``flock`` the lock file: its
    descriptor, with this process's id written in it; ``None`` where nothing can be
    locked; ``ValueError`` when another process holds it or the lock file is a link."""
    while True:
        fd = _open_lock(lock, path, option)
        if fd is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValueError(
                    f"{option} {path} is in use by another run"
                    + (f" (process {holder})" if holder else "")
                    + f"; wait for it to end, or choose another path (lock: {lock})."
                ) from None
            return None  # no locking on this file system
        try:  # the file we locked is still the lock file (not unlinked meanwhile)
            same = os.fstat(fd).st_ino == os.lstat(lock).st_ino
        except OSError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)


def _open_lock(lock: Path, path: PathLike, option: str) -> Optional[int]:
    """The lock file's descriptor: created with ``O_EXCL``, or the existing plain file
    opened with ``O_NOFOLLOW``; ``None`` where the folder takes no file."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
        except FileExistsError:
            try:
                fd = os.open(lock, os.O_RDWR | _NOFOLLOW)
            except FileNotFoundError:  # released meanwhile: create it again
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
                    return None
                raise _foreign_lock(lock, path, option) from None
        except OSError:  # a read-only folder etc.: check_output reports it elsewhere
            return None
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            return fd
        os.close(fd)
        raise _foreign_lock(lock, path, option)


def _foreign_lock(lock: Path, path: PathLike, option: str) -> ValueError:
    return ValueError(
        f"{option} {path}: its lock file {lock} is not a plain file of gpunet's (a "
        "symbolic link, a hard link to another file, or not a file); gpunet never writes "
        "through it. Remove it if no run is using the checkpoint, then run again.")


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""


# ---------------------------------------------------------------- writing
def atomic_write_text(path: PathLike, text: str, option: str = "") -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), option)


def atomic_write_bytes(path: PathLike, data: bytes, option: str = "") -> None:
    """Write ``data`` to ``path`` atomically, with the permissions a plain ``open`` gives.

    The bytes go to a temporary file in the destination's folder (a link's target's, see
    :func:`destination`), which then replaces the destination: readers (and a Ctrl-C
    mid-write) see the old file or the new one, never half of one. ``mkstemp`` makes
    its file 0600; the result gets the permissions of the file it replaces, or for a
    new file ``0666`` less the user's umask, as any other program's output would.

    A missing folder, a destination that is not a regular file (a directory made there
    since the run was checked) or an operating-system failure while writing is a
    :class:`WriteError` naming the file (``option`` too, when given), with the
    destination as it was.
    """
    path = Path(path)
    target = destination(path)
    folder = _folder(target)
    if not folder.is_dir():
        raise WriteError(path, FileNotFoundError(
            errno.ENOENT, f"directory {folder} does not exist"), option)
    try:
        st: Optional[os.stat_result] = os.stat(target)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
        raise WriteError(path, OSError(code, f"{target} is {_kind(st.st_mode)}, not a file "
                                       "that can be replaced atomically"), option)
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    tmp = None
    try:
        # mkstemp: O_CREAT | O_EXCL | O_NOFOLLOW, 8 random characters and the suffix
        fd, tmp = tempfile.mkstemp(prefix=hidden_name(folder, target.name, ".", extra=12),
                                   suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise WriteError(path, exc, option) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
