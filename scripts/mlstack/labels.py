"""Labels: the data set's classes, as integers (digits) or strings (a folder's names)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

Label = int | str

_INTEGER = re.compile(r"-?\d+")


def parse_label(value: Any) -> Label:
    """A label from a folder name, a file name's prefix, a CSV cell or a JSON value:
    integers stay integers ("7" -> 7, 7.0 -> 7), any other text stays text. numpy
    scalars (what pandas hands back) count as their Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        raise TypeError(f"not a label: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        return int(text) if _INTEGER.fullmatch(text) else text
    raise TypeError(f"not a label: {value!r}")
