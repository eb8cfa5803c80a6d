"""Text from the data, made safe to print in a terminal.

Partner names, ids and every other value the exports carry are printed by
``explain``, ``report``, ``demo`` and ``run``. A value holding an escape
sequence (``\\x1b[2J`` clears the screen, ``\\x1b]0;…\\x07`` sets the window
title, others can rewrite what was printed before) would act on the reader's
terminal. :func:`for_terminal` removes such sequences and every other control
character from the text to print; the data itself stays as it is.

Through rich, print data as :class:`rich.text.Text` (or pass it through
:func:`for_rich`): a plain string is read as rich markup, so a name such as
``[red]x[/red]`` would be styled instead of shown.
"""
from __future__ import annotations

import re

#: escape sequences: CSI (7- and 8-bit), the string sequences OSC, DCS, SOS, PM and APC
#: up to their terminator (BEL or ST), and the two-character escapes (ESC + one byte,
#: with intermediate bytes)
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]")
#: what is left: C0 controls except tab and newline, DEL, C1 controls
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def for_terminal(text) -> str:
    """``text`` (made a ``str``) without ANSI/OSC escape sequences and without control
    characters other than newline and tab: what is safe to write to a terminal."""
    text = "" if text is None else str(text)
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def for_rich(text) -> str:
    """``text`` for a rich string that is read as markup: :func:`for_terminal`, then
    the markup escaped (``[red]`` is printed as ``[red]``)."""
    from rich.markup import escape

    return escape(for_terminal(text))
