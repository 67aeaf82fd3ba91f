"""Numbers on the command line (argparse `type=` functions), for the tools and the pytest plugin alike:
inf, nan, zero and negatives are refused where they mean nothing, in one line naming the option
(argparse puts the option's name before the message)."""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _at_least(kind: type, low: float, strict: bool, what: str):
    """A parser of a number of `kind` that is at least `low` (above it when strict)."""
    def parse(text: str):
        value = _number(text, kind)
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"{text!r} must be {what}")
        return value
    parse.__name__ = f"{kind.__name__} {what}"
    return parse


# --tolerance-k: inf compares every change as ok, 0 fails every change.
positive_float = _at_least(float, 0, True, "above 0")
# --confirm-runs: 0 fails on the first measurement.
non_negative_int = _at_least(int, 0, False, "0 or more")
positive_int = _at_least(int, 0, True, "1 or more")
