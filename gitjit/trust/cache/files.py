"""Files and folders under `$GIT_DIR/gitjit`, made the way git makes its own.

gitjit's caches (keyrings, the snapshot, signature verdicts) sit inside the
git directory, which several Unix users may share: a web server's user, an
ssh user, root running a command by hand. Three rules keep any of them from
blocking another:

1. Whatever gitjit creates there gets the permissions git would give its
   own files under `core.sharedRepository` (umask, group, all or 0xxx),
   directories included, with the set-group-id bit git puts on shared
   directories (`shared_mode`, after git's `adjust_shared_perm`).
2. A cache that cannot be written (read-only, another user's, a full disk)
   only costs time: callers catch `OSError` and go on uncached, using
   `private_dir` for what this run needs on disk.
3. Only the cache's creator changes an existing entry's mode; nobody else
   tries (`chmod` would fail for them anyway).

Imported only where something is written (a push writes its tickets), so shutil and
tempfile are imported only by the functions that need them.
"""

from __future__ import annotations

import os
import stat

UMASK = 0  # core.sharedRepository unset, false or umask: modes come from the umask alone
PERM_GROUP = 0o660
PERM_EVERYBODY = 0o664


def parse_shared(value: str | None) -> int:
    """core.sharedRepository as git reads it: 0 (umask), a positive set of bits to add
    (group, all), or minus an exact mode (0xxx). An unreadable value means umask: it
    never grants more than git would."""
    if value is None:
        return UMASK
    text = value.strip().lower()
    if text in ("", "umask", "false", "no", "off"):
        return UMASK
    if text in ("group", "true", "yes", "on"):
        return PERM_GROUP
    if text in ("all", "world", "everybody"):
        return PERM_EVERYBODY
    try:
        number = int(text, 8)
    except ValueError:
        return UMASK
    if number in (0, 1, 2):  # git's compatibility values
        return (UMASK, PERM_GROUP, PERM_EVERYBODY)[number]
    if number & 0o600 != 0o600:
        return UMASK  # git refuses such a value; so does gitjit, by not sharing
    return -(number & 0o666)


def shared_mode(mode: int, shared: int, is_dir: bool) -> int:
    """The permission bits git gives a file or directory of `mode` in a repository shared as `shared`."""
    if shared == UMASK:
        return stat.S_IMODE(mode)
    tweak = -shared if shared < 0 else shared
    if not mode & stat.S_IWUSR:
        tweak &= ~0o222
    if mode & stat.S_IXUSR:
        tweak |= (tweak & 0o444) >> 2
    new = (mode & ~0o777) | tweak if shared < 0 else mode | tweak
    if is_dir:
        new |= (new & 0o444) >> 2
        new |= stat.S_ISGID
    return stat.S_IMODE(new)


def sharing(path: str) -> int:
    """How the repository whose cache holds `path` is shared (UMASK where that is unknown)."""
    # cache_dir() remembered which repository each cache is in
    from gitjit.git.branch import cache_setting

    try:
        return parse_shared(cache_setting(path, "core.sharedRepository"))
    except (OSError, ValueError):  # a config git cannot read: share nothing more than the umask does
        return UMASK


def adjust(path: str, shared: int | None = None) -> None:
    """Gives `path` the mode git would (its creator only: anybody else is not allowed to)."""
    shared = sharing(path) if shared is None else shared
    if shared == UMASK:
        return
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return
    wanted = shared_mode(info.st_mode, shared, stat.S_ISDIR(info.st_mode))
    if wanted != stat.S_IMODE(info.st_mode):
        os.chmod(path, wanted)


def adjust_tree(root: str, shared: int | None = None) -> None:
    """`adjust` for a folder built aside and everything in it, before it is published."""
    shared = sharing(root) if shared is None else shared
    if shared == UMASK:
        return
    adjust(root, shared)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            adjust(os.path.join(folder, name), shared)


def open_up(root: str) -> None:
    """A folder built aside by `tempfile.mkdtemp` (mode 0700) and what is in it, given the
    modes git would give them: a folder as `mkdir` makes one under the umask, then shared."""
    os.chmod(root, 0o777 & ~current_umask())
    adjust_tree(root)


def current_umask() -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # elsewhere the only way to read it is to set it, for an instant
    os.umask(mask)
    return mask


def make_dirs(path: str) -> None:
    """`os.makedirs`, each folder it creates shared as the repository is; OSError when it cannot."""
    if os.path.isdir(path):
        adjust_existing(path)
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        make_dirs(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return
    adjust(path)


def adjust_existing(path: str) -> None:
    """A cache folder made before (by the pin lock, an older gitjit): shared as it should be, where ours."""
    try:
        adjust(path)
    except OSError:
        pass  # somebody else's folder: it stays as its owner made it


def sync_tree(root: str) -> None:
    """Every file and folder of `root` on disk, before a rename publishes it: a crash then
    leaves either the whole entry or none of it, never a keyring of zeros."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            _fsync(os.path.join(folder, name), os.O_RDONLY)
        _fsync(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def sync_dir(path: str) -> None:
    """A folder's entries on disk (after a rename into it)."""
    try:
        _fsync(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        pass  # the entry is already in place; only its durability is at stake


def _fsync(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_private: list[str] = []


def private_dir(prefix: str) -> str:
    """A folder of this process's own, outside every cache, removed when the process exits.

    A process killed before it exits leaves the folder behind in the
    temporary directory, where nothing ever reads it.
    """
    import tempfile

    path = tempfile.mkdtemp(prefix=prefix)
    keep_until_exit(path)
    return path


def forget_private(path: str) -> None:
    """Removes a private folder now (it is no longer needed)."""
    if path in _private:
        _private.remove(path)
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def keep_until_exit(path: str) -> None:
    """A folder this run uses and nobody else will: removed when the process exits."""
    if not _private:
        import atexit

        atexit.register(_remove_private)
    _private.append(path)


def _remove_private() -> None:
    for path in _private:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    _private.clear()


def sweep(folder: str, older_than: float = 3600.0) -> None:
    """Removes scratch entries (`.`-names) a killed build left in `folder` more than an hour ago."""
    import time

    try:
        names = os.listdir(folder)
    except OSError:
        return
    limit = time.time() - older_than
    for name in names:
        if not name.startswith("."):
            continue
        path = os.path.join(folder, name)
        try:
            if os.lstat(path).st_mtime >= limit:
                continue
            if os.path.isdir(path):
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass
