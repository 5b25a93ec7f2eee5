"""Shared test fixtures: offline mode, the shared data folder, small real photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def data_root() -> Path:
    return Path(os.environ.get("SEAGULL_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    if not (root / "README.md").is_file():
        pytest.skip(f"shared data not found at {root} (set SEAGULL_DATA)")
    return root


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from seagull.imageio import load_image

    return load_image(EXAMPLES / "coffee.jpg")
