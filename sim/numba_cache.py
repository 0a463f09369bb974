"""Where numba keeps its on-disk cache of the compiled model, for any user.

numba caches compiled functions in `__pycache__` beside the source, or else in the user's cache
folder under the home folder.  A user who can write neither (a shared read-only install, a
service account without a home, a read-only image) gets `RuntimeError: cannot cache function
...: no locator available` on every run.  `configure_cache()` runs before numba is imported
(sim/model/compiled.py): when the user has set NUMBA_CACHE_DIR, or the package's folder is
writable, nothing changes; otherwise NUMBA_CACHE_DIR is set to a per-user folder: the user's cache
folder ($XDG_CACHE_HOME or ~/.cache)/fentsim/numba if it can be written, else
<temp dir>/fentsim-numba-<uid>, created private (0700) and used only if owned by this user and not
writable by others (else a fresh private temporary folder: it works, without reuse).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ENV = "NUMBA_CACHE_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent


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


def configure_cache() -> str | None:
    """Set NUMBA_CACHE_DIR to a per-user folder when needed (module doc); return the folder set,
    or None when numba's own choice works (or the user chose)."""
    if os.environ.get(ENV):
        return None
    if _writable_folder(PACKAGE_DIR / "model" / "__pycache__"):
        return None
    folder = str(user_cache_dir())
    os.environ[ENV] = folder
    if "numba" in sys.modules:   # imported already: numba reads its settings again
        from numba.core import config
        config.reload_config()
    return folder
