"""Dataset readers, chosen by format name: ``open_dataset("pts:/data/300w/lfpw/trainset")``.

A dataset is named by a spec ``FORMAT:PATH``, optionally with reader options as a query string:
``300vw:/data/300VW?every=10``, ``mtfl:/data/MTFL?split=testing``. Option values that look like a
bool (true/false/yes/no/on/off), an int or a float are converted, except for options whose default is
a string or None, which get the text as written.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from hyperface.data.readers.aflw import AflwReader
from hyperface.data.readers.aflw2000 import Aflw2000Reader
from hyperface.data.readers.base import DatasetError, DatasetReader, Problem
from hyperface.data.readers.celeba import CelebAReader
from hyperface.data.readers.composite import CompositeReader
from hyperface.data.readers.dlib_xml import DlibXmlReader
from hyperface.data.readers.fairface import FairFaceReader
from hyperface.data.readers.menpo import LjsonReader, MenpoReader
from hyperface.data.readers.mtfl import MtflReader
from hyperface.data.readers.negatives import NegativesReader
from hyperface.data.readers.pts import PtsReader
from hyperface.data.readers.pts_photos import PtsPhotosReader
from hyperface.data.readers.utkface import UtkFaceReader
from hyperface.data.readers.voc import VocReader
from hyperface.data.readers.vw300 import Vw300Reader
from hyperface.data.readers.wider import WiderReader

__all__ = [
    "READERS",
    "DatasetReader",
    "DatasetError",
    "Problem",
    "open_dataset",
    "list_formats",
    "format_options",
    "parse_spec",
]

READERS: dict[str, type[DatasetReader]] = {
    "pts": PtsReader,
    "menpo": MenpoReader,
    "ljson": LjsonReader,
    "300vw": Vw300Reader,
    "aflw": AflwReader,
    "aflw2000": Aflw2000Reader,
    "mtfl": MtflReader,
    "utkface": UtkFaceReader,
    "fairface": FairFaceReader,
    "dlib": DlibXmlReader,
    "celeba": CelebAReader,
    "negatives": NegativesReader,
    "voc": VocReader,
    "wider": WiderReader,
    "pts-photos": PtsPhotosReader,
    "composite": CompositeReader,
}

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def list_formats() -> list[str]:
    """The format names :func:`open_dataset` accepts."""
    return list(READERS)


def _reader_class(fmt: str) -> type[DatasetReader]:
    try:
        return READERS[fmt]
    except KeyError:
        raise ValueError(f"unknown dataset format {fmt!r}; formats: {', '.join(READERS)}") from None


def format_options(fmt: str) -> dict[str, Any]:
    """The options (keyword-only constructor arguments) of a format's reader, with their defaults."""
    signature = inspect.signature(_reader_class(fmt).__init__)
    return {name: p.default for name, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY}


def _convert(text: str, default: Any) -> Any:
    if default is None or isinstance(default, str):
        return text
    if text.lower() in _BOOLS:
        return _BOOLS[text.lower()]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split ``FORMAT:PATH?key=value&...`` into (format, path, {key: raw value})."""
    fmt, sep, rest = spec.partition(":")
    path, _, query = rest.partition("?")
    if not sep or not fmt or not path:
        raise ValueError(f"dataset {spec!r}: expected FORMAT:PATH (optionally ?key=value&...); "
                         f"formats: {', '.join(READERS)}")
    options: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"dataset {spec!r}: option {item!r} is not key=value")
        if key in options:
            raise ValueError(f"dataset {spec!r}: option {key!r} given twice")
        options[key] = value
    return fmt, path, options


def open_dataset(spec: str, **options: Any) -> DatasetReader:
    """Open the dataset named by ``FORMAT:PATH[?key=value&...]``.

    ``options`` are reader options (e.g. ``verify_images=True``); options in the spec override
    them. Raises ValueError for an unknown format or option (naming the allowed ones) and
    :class:`DatasetError` when the dataset cannot be read at all.
    """
    fmt, path, raw = parse_spec(spec)
    cls = _reader_class(fmt)
    allowed = format_options(fmt)
    merged = dict(options)
    merged.update({key: _convert(value, allowed.get(key)) for key, value in raw.items()})
    unknown = sorted(set(merged) - set(allowed))
    if unknown:
        raise ValueError(f"{fmt}: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return cls(path, **merged)
