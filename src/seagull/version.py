"""The package version, in the contracts layer so that any module can record it cheaply."""

__version__ = "0.1.0"
