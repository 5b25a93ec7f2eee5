"""Text for people: file names, ROI names and messages made safe to print on a terminal.

A file or ROI name may hold control characters (ESC sequences that clear the screen or recolour it,
carriage returns and newlines that forge lines of a table). Every table and text line the commands
print passes such values through :func:`printable`, which writes them as visible escapes (``\\x1b``,
``\\r``, ``\\n``). JSON output needs no such care: the JSON encoder escapes them already.
"""

from __future__ import annotations

import unicodedata

# Characters that move the cursor, end lines or reorder text on a terminal: C0 and C1 controls and
# DEL (category Cc), line and paragraph separators, and the bidirectional embeddings, overrides and
# isolates (the "Trojan Source" characters).
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def printable(value: object) -> str:
    """``str(value)`` with every control character written as a visible escape (one line, no
    terminal commands); other text, accents and emoji included, is kept as it is."""
    text = str(value)
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)
