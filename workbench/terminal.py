"""Text from the data, made safe to print on a terminal.

Logs, intents, notes and error messages come from users' files. A raw ESC sequence in one can
rewrite the curator's terminal (move the cursor, change the title, hide lines) and a bidi
override can make text read differently from what it is. `printable` escapes them.
"""

from __future__ import annotations

import re

# C0 controls (TAB and LF included; LF is kept where a newline is meant), DEL, C1 controls,
# the bidi embeddings and overrides (U+202A-U+202E), the bidi isolates (U+2066-U+2069), and
# the line and paragraph separators (U+2028, U+2029), which some terminals treat as newlines.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_UNSAFE_KEEP_NEWLINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
                                   "\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, newlines: bool = False) -> str:
    """`str(text)` with control characters and bidi controls escaped (ESC -> `\\x1b`,
    U+202E -> `\\u202e`); with `newlines`, line feeds are kept."""
    pattern = _UNSAFE_KEEP_NEWLINES if newlines else _UNSAFE
    return pattern.sub(_escape, str(text))
