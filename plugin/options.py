"""argparse types for every acapella command: each checks one kind of value and says what to give instead.

    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--chunk-seconds", type=seconds, default=60.0)
    >>> p.parse_args(["--chunk-seconds", "30"]).chunk_seconds
    30.0
"""
from __future__ import annotations

import argparse
import math

from acapella.stems import parse_stems
from acapella.files import check_format


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give {what}") from None


def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    value = _number(text, "a positive number of seconds")
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive, finite number of seconds")
    return value


def seconds_or_zero(text: str) -> float:
    """A non-negative, finite number of seconds."""
    value = _number(text, "a number of seconds, 0 or more")
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds, 0 or more")
    return value


def count(text: str) -> int:
    """A whole number of at least 1 (threads, songs, samples)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: give 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return value


def vocal_pan(text: str) -> float | str:
    """``auto``, or where the voice sits from -1 (hard left) to 1 (hard right)."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give auto or a number from -1 (hard left) to 1 (hard right)")
    return value


def stems(text: str) -> tuple[str, ...]:
    """Comma-separated stem names, e.g. ``vocals,accompaniment``; each once."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a stem is listed twice in {text!r}")
    try:
        return parse_stems(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def output_format(text: str) -> str:
    """An output format acapella writes: ``wav``, ``flac``, ``ogg`` or ``mp3``."""
    try:
        return check_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def probability(text: str) -> float:
    """``0.3`` -> ``0.3``: a share of examples, refused outside [0, 1]."""
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give a probability between 0 and 1, e.g. 0.3") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability: give a value between 0 and 1, e.g. 0.3")
    return p


def positive_float(text: str) -> float:
    """``"1e-3"`` -> ``0.001``: an amount that must be above 0 and finite (minutes, learning rates)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give one above 0") from None
    if not 0.0 < x < math.inf:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
    return x
