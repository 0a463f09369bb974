"""How the model's equations are compiled: numba's `njit` with the project's settings.

The equations (`sim.model.flows`) are plain scalar Python over one draw; numba compiles them to
machine code that every engine calls.  `NUMBA_DISABLE_JIT=1` runs the very same functions as
plain Python (slow, for debugging with pdb or prints).
"""

from __future__ import annotations

from sim.numba_cache import configure_cache

configure_cache()   # a cache folder this user can write, before numba is imported (sim/numba_cache.py)

import numba  # noqa: E402

# Floating-point licences for the hot code: fused multiply-add, reassociation and reciprocal
# multiplication; never 'no NaN/inf' (the step control must see a NaN).
FAST_MATH = {"contract", "reassoc", "arcp"}


def jit(function=None, *, inline: bool = False, fastmath: bool = False, parallel: bool = False):
    """numba.njit with on-disk caching and numpy's error model; usable bare or with options."""
    options = {"cache": True, "error_model": "numpy"}
    if inline:
        options["inline"] = "always"
    if fastmath:
        options["fastmath"] = FAST_MATH
    if parallel:
        options["parallel"] = True
    decorate = numba.njit(**options)
    return decorate(function) if function is not None else decorate
