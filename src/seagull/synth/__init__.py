"""SEAGULL-100w-style data synthesis: references -> ROIs -> distortions -> labels -> conversations."""

from __future__ import annotations

import importlib

# The pipeline needs torch; it loads when a name is used, so `seagull --help` stays quick.
_EXPORTS = {
    "SynthConfig": ".config",
    "discover_references": "..references",
    "process_reference": ".pipeline",
    "SynthSummary": ".runner",
    "run_synthesis": ".runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'seagull.synth' has no attribute {name!r}")
