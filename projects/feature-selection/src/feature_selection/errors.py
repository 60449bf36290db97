"""Errors for bad input tables: clear messages that name the problem and the columns."""

from __future__ import annotations

from collections.abc import Sequence

# Messages list at most this many column names, then say how many more there are.
_MAX_NAMES = 10


class FeatureSelectionError(ValueError):
    """A table or target that a selection method cannot use; the message says why."""


def format_columns(columns: Sequence[object]) -> str:
    """Name up to ten columns, e.g. ``'a', 'b' and 3 more``."""
    names = [repr(str(column)) for column in columns]
    if len(names) <= _MAX_NAMES:
        return ", ".join(names)
    return ", ".join(names[:_MAX_NAMES]) + f" and {len(names) - _MAX_NAMES} more"
