"""Typed configuration from plain data and YAML files: the machinery under :mod:`hyperface.train.config`,
which holds the schema (its dataclasses and their checks).

:func:`build_dataclass` fills a dataclass from nested mappings, checking each value against the field's
type hint (numeric text such as ``1e-3``, which YAML 1.1 reads as a string, is taken for a number where
the field is one); :func:`read_yaml` reads a file with its ``extends`` chain, refusing files over
:data:`MAX_CONFIG_BYTES` and YAML whose aliases expand past :data:`MAX_CONFIG_VALUES` values;
:func:`apply_overrides` applies ``--set key.path=value``. Every problem is a :class:`ConfigError` naming
the file or key.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

__all__ = ["ConfigError", "build_dataclass", "read_yaml", "apply_overrides", "MAX_CONFIG_BYTES", "MAX_CONFIG_VALUES"]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file or key and the fix."""


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


# A decimal number as text, e.g. "1e-3", which YAML 1.1 (PyYAML) reads as a string: no dot before the exponent.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _check_value(value: Any, tp: Any, key: str) -> Any:
    """``value`` converted to ``tp`` (int -> float, numeric text -> number only), or a ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return copy.deepcopy(value)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _check_value(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a {_type_name(tp)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) and float(value).is_integer():
            value = int(float(value))  # "1e4": YAML 1.1 reads an exponent without a dot as text
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) and math.isfinite(float(value)):
            value = float(value)  # "1e-3" (the documented --set optim.lr=1e-3): YAML 1.1 reads it as text
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str) and item is str:  # a single path or task is a list of one
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_type_name(item)}, got {value!r}")
        return [_check_value(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        ktp, vtp = typing.get_args(tp)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_check_value(k, ktp, f"{key} key"): _check_value(v, vtp, f"{key}.{k}") for k, v in value.items()}
    raise AssertionError(f"unsupported config type {tp!r} for {key}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def build_dataclass(cls: type, data: Any, prefix: str) -> Any:
    """Instance of dataclass ``cls`` from a mapping, starting from its defaults."""
    obj = cls()
    if data is None:
        return obj
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"unknown key {full!r}; known keys{' of ' + prefix if prefix else ''}: {', '.join(names)}")
        tp = hints[key]
        if _is_dataclass_type(tp):
            setattr(obj, key, build_dataclass(tp, value, full))
        else:
            setattr(obj, key, _check_value(value, tp, full))
    return obj


def _deep_merge(base: dict, top: dict, whole: tuple[str, ...]) -> dict:
    """``top`` over ``base``, mapping by mapping; a mapping under a key in ``whole`` is replaced, not merged."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in whole:
            out[key] = _deep_merge(out[key], value, whole)
        else:
            out[key] = value
    return out


#: A config file larger than this is not a training config (the shipped ones are a few KB).
MAX_CONFIG_BYTES = 1_000_000
#: ... nor one holding more values than this once YAML aliases are expanded: a 600-byte file of nested
#: aliases ("billion laughs") holds billions, which copying or saving the config would spell out.
MAX_CONFIG_VALUES = 100_000


def _parse_yaml(text: str | bytes, source: str) -> Any:
    """``yaml.safe_load(text)``, refused (ConfigError naming ``source``) past :data:`MAX_CONFIG_VALUES` values
    counted with aliases expanded; the count stops at the budget, so a bomb costs no more than that."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None
    count, stack = 0, [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(f"{source}: more than {MAX_CONFIG_VALUES:,} values once YAML aliases (*name) are "
                              f"expanded; a training config holds a few hundred")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return data


def read_yaml(path: Path, whole: tuple[str, ...] = (), chain: tuple[Path, ...] = ()) -> dict:
    """A YAML file's mapping with the files it ``extends`` merged underneath (mappings under a key in
    ``whole`` are replaced by the child's, not merged)."""
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"{path}: 'extends' loops back to itself ({' -> '.join(map(str, chain + (path,)))})")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes: not a training config")
    data = _parse_yaml(raw, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of sections")
    parents = data.pop("extends", None)
    if parents is None:
        return data
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ConfigError(f"{path}: 'extends' must be a file name or a list of file names")
    merged: dict = {}
    for parent in parents:
        merged = _deep_merge(merged, read_yaml(path.parent / parent, whole, chain + (path,)), whole)
    return _deep_merge(merged, data, whole)


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """``data`` with each ``key.path=value`` applied (value parsed as YAML); a new dict."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. optim.lr=0.001")
        value = _parse_yaml(text, f"--set {item!r}: value") if text.strip() else ""
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = nxt
        node[parts[-1]] = value
    return data
