"""`help(sim)` shows the public API (sim/__init__.py imports it lazily, yet pydoc lists it)."""

from __future__ import annotations

import pydoc

import sim


def test_help_of_the_package_lists_every_public_name_with_its_signature():
    text = pydoc.render_doc(sim, renderer=pydoc.plaintext)
    for name in sim.__all__:
        assert f"sim.{name}" in sim.__doc__, f"the docstring's API list lacks {name}"
        assert f"class {name}(" in text or f"    {name}(" in text, f"help(sim) lacks {name}"
