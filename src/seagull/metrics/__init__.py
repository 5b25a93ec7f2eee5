"""Image-quality metrics: full-reference labels (fr) and no-reference baselines (nr)."""
