"""SEAGULL-100w-style data synthesis: references -> ROIs -> distortions -> labels -> conversations."""

from .pipeline import SynthConfig, discover_references, process_reference
from .runner import SynthSummary, run_synthesis

__all__ = ["SynthConfig", "SynthSummary", "discover_references", "process_reference", "run_synthesis"]
