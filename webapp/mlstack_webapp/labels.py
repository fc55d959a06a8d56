"""Labels as the web app sees them: in the API's JSON, in sample file names, in the page."""

from __future__ import annotations

import re

Label = int | str

_INTEGER = re.compile(r"-?\d+")


def parse_label(value: object) -> Label:
    """A label from a JSON value ("prediction", "classes", a probability's key) or a
    sample file name's prefix: integers stay integers ("7", 7.0 -> 7), other text is
    text (a user's folder names). The serving API reads labels by the same rule."""
    if isinstance(value, str):
        text = value.strip()
        return int(text) if _INTEGER.fullmatch(text) else text
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"not a label: {value!r}")
    return value
