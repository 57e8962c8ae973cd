"""The analyzer options a request may set (query parameters), each checked before any work.

A whitelist, not a pass-through: a request must not choose weights files on the server's disk or
devices, only how the server's models look at its photo. Each option maps to a
:class:`~hyperface.FaceAnalyzer` keyword argument; a set of options is a hashable key the worker pool
keeps an analyzer for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["OPTIONS", "SOURCE_OPTIONS", "OptionError", "parse_options", "analyzer_settings"]

POSE_SOURCES = ("auto", "branch", "landmarks", "mean")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class OptionError(ValueError):
    """A query parameter the service does not take, or a value out of its range; the message names it."""


@dataclass(frozen=True)
class Option:
    """One query parameter: how to read its text, and what it means (shown by ``GET /health``)."""

    parse: Callable[[str], Any]
    help: str


def _number(low: float, high: float, integer: bool = False, low_open: bool = False) -> Callable[[str], Any]:
    kind = "an integer" if integer else "a number"
    span = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise ValueError(f"must be {kind} in {span}, got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            raise ValueError(f"must be {kind} in {span}, got {text!r}")
        return value
    return parse


def _boolean(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"must be true or false, got {text!r}")


def _pose_source(text: str) -> str:
    if text not in POSE_SOURCES:
        raise ValueError(f"must be one of {', '.join(POSE_SOURCES)}, got {text!r}")
    return text


OPTIONS: dict[str, Option] = {
    "score_threshold": Option(_number(0.0, 1.0), "minimum face score, 0-1 (default: the analyzer's)"),
    "min_face": Option(_number(0.0, 10_000.0, low_open=True), "smallest face looked for, in pixels"),
    "detector_flip": Option(_boolean, "the detector also runs the mirrored photo (crowds and small faces, "
                                      "twice the detector's time): true or false"),
    "max_side": Option(_number(32, 8192, integer=True), "longest side the analysis works at, 32-8192"),
    "irp_rounds": Option(_number(0, 5, integer=True), "Iterative Region Proposal rounds, 0-5"),
    "iterations": Option(_number(1, 5, integer=True), "stage two's alignment rounds, 1-5"),
    "flip_average": Option(_boolean, "stage two also runs the mirrored face: true or false"),
    "fine_flip_average": Option(_boolean, "the fine landmark network also runs the mirrored face: true or false"),
    "pose_from": Option(_pose_source, f"head pose from: {', '.join(POSE_SOURCES)}"),
}


#: Request options that are the candidate source's (``proposal_options``), by the source's own keyword.
SOURCE_OPTIONS = {"min_face": "min_face", "detector_flip": "flip"}


def parse_options(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, Any], ...]:
    """Query (name, text) pairs as a sorted, hashable tuple of (option, value); :class:`OptionError`
    for an unknown or repeated name or a bad value."""
    values: dict[str, Any] = {}
    for name, text in items:
        if name not in OPTIONS:
            raise OptionError(f"unknown option {name!r}; the options are {', '.join(OPTIONS)}")
        if name in values:
            raise OptionError(f"option {name!r} given twice")
        try:
            values[name] = OPTIONS[name].parse(text.strip())
        except ValueError as exc:
            raise OptionError(f"option {name!r} {exc}") from None
    return tuple(sorted(values.items()))


def analyzer_settings(base: dict[str, Any], options: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The server's ``base`` FaceAnalyzer settings with a request's ``options`` applied."""
    settings = dict(base)
    for name, value in options:
        if name in SOURCE_OPTIONS:  # a keyword of the candidate source, not of the analyzer
            settings["proposal_options"] = {**(settings.get("proposal_options") or {}), SOURCE_OPTIONS[name]: value}
        else:
            settings[name] = value
    return settings
