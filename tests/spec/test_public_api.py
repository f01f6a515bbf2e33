"""panoptes.spec's public surface is what __all__ says: nothing missing, nothing extra."""

from __future__ import annotations

import panoptes.spec as spec


def test_all_is_exact() -> None:
    public = {n for n in vars(spec) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(spec, n)).__name__ == "module"}
    assert set(spec.__all__) == public - modules
    assert len(spec.__all__) == len(set(spec.__all__)), "a name is listed twice"
