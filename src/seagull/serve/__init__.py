"""The REST API and web page: ``create_app(model, limits)``; ``seagull serve`` runs it with uvicorn."""

from __future__ import annotations

from .limits import Limits

__all__ = ["Limits", "create_app"]


def __getattr__(name: str):
    # FastAPI and the model load only when the app is wanted.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'seagull.serve' has no attribute {name!r}")
