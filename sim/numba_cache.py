"""Where numba keeps its on-disk cache of the compiled model, for any user and any model version.

numba keys a cached function by its own source file only: the compiled kernel (sim/engine)
inlines the equations of sim/model/flows.py, so after an edit of flows.py numba loaded the old
machine code and gave the old model's results.  The cache therefore lives in a folder named by a
digest of every source file the compiled code is built from (`source_digest`: sim/model and
sim/engine): a change to any of them compiles afresh, going back reuses the older folder.

numba caches compiled functions in `__pycache__` beside the source, or else in the user's cache
folder under the home folder.  A user who can write neither (a shared read-only install, a
service account without a home, a read-only image) gets `RuntimeError: cannot cache function
...: no locator available` on every run.  `configure_cache()` runs before numba is imported
(sim/model/compiled.py): when the user has set NUMBA_CACHE_DIR nothing changes; otherwise
NUMBA_CACHE_DIR is set to <base>/<source digest>, the base being the package's
`__pycache__/numba` when it is writable, else a per-user folder: the user's cache
folder ($XDG_CACHE_HOME or ~/.cache)/fentsim/numba if it can be written, else
<temp dir>/fentsim-numba-<uid>, created private (0700) and used only if owned by this user and not
writable by others (else a fresh private temporary folder: it works, without reuse).
Each use marks its folder's time; digest folders beside it unused for `KEEP_DAYS` days (older
model versions) are removed, so a working copy that is edited often does not fill its disk.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

ENV = "NUMBA_CACHE_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent
COMPILED_SOURCES = ("model", "engine")   # sim/ folders whose code numba compiles together
KEEP_DAYS = 14                           # days an unused digest folder is kept


def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """A digest (16 hex digits) of every .py file in COMPILED_SOURCES: names and contents."""
    digest = hashlib.sha256()
    for folder in COMPILED_SOURCES:
        for path in sorted((package_dir / folder).glob("*.py")):
            digest.update(f"{folder}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _writable_folder(folder: Path) -> bool:
    """Whether this user can create files in `folder` (created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _private(folder: Path) -> bool:
    """Whether `folder` is a real folder of this user that nobody else may write."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    import stat
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def user_cache_dir() -> Path:
    """The per-user cache folder numba should use when the package's folder is not writable."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    home_cache = Path(base) / "fentsim" / "numba"
    if os.path.isabs(base) and _writable_folder(home_cache):
        return home_cache
    shared = Path(tempfile.gettempdir()) / f"fentsim-numba-{os.getuid()}"
    try:
        shared.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        pass
    if _private(shared) and _writable_folder(shared):
        return shared
    return Path(tempfile.mkdtemp(prefix="fentsim-numba-"))


def prune_unused(base: Path, current: Path, keep_days: float = KEEP_DAYS) -> list[Path]:
    """Mark `current` as used now and remove the digest folders (16 hex digits) in `base` not
    used for `keep_days` days; return the removed folders.  Errors (a folder in use by another
    user, a read-only base) leave things as they are."""
    import shutil
    import time
    removed = []
    try:
        current.mkdir(parents=True, exist_ok=True)
        os.utime(current)
        cutoff = time.time() - keep_days * 86400.0
        for folder in base.iterdir():
            name = folder.name
            if (folder != current and len(name) == 16 and all(c in "0123456789abcdef" for c in name)
                    and folder.is_dir() and folder.stat().st_mtime < cutoff):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    except OSError:
        pass
    return removed


def configure_cache() -> str | None:
    """Set NUMBA_CACHE_DIR to <base>/<source digest> (module doc) unless the user set it; return
    the folder set, or None when the user chose."""
    if os.environ.get(ENV):
        return None
    base = PACKAGE_DIR / "__pycache__" / "numba"
    if not _writable_folder(base):
        base = user_cache_dir()
    folder = str(base / source_digest())
    prune_unused(base, Path(folder))
    os.environ[ENV] = folder
    if "numba" in sys.modules:   # imported already: numba reads its settings again
        from numba.core import config
        config.reload_config()
    return folder
