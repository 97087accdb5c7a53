"""YAML -> typed, nested dataclasses, with ``--set a.b=3`` overrides.

Every experiment config is a dataclass tree. ``load_config`` checks each key and value against it, so a
typo or a wrong type fails at start-up with the key and the file named, never halfway through a run.
The resolved config (defaults + file + overrides) is written beside every run and stored in checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import reprlib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from expr_common.atomic import write_text
from expr_common.errors import ExprError

T = TypeVar("T")


class ConfigError(ExprError, ValueError):
    """A config file or override does not fit its schema; the message names the key and the source."""


def load_config(path: str | Path | None, schema: type[T], overrides: Sequence[str] = ()) -> T:
    """Read ``path`` (YAML; ``None`` = all defaults), apply ``key.sub=value`` overrides, return ``schema``."""
    source = str(path) if path is not None else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")  # YAML's own encoding; a leading BOM is allowed and skipped
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ConfigError(
                f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
            ) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        except RecursionError:  # PyYAML composes nested collections recursively
            raise ConfigError(f"{path}: not valid YAML: collections nested too deeply") from None
        if loaded is None:  # a 0-byte or comments-only file: never "all defaults" (a full-size run)
            raise ConfigError(f"{path}: the config is empty; it must set at least one key")
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(loaded).__name__}")
        data = dict(loaded)
    data = apply_overrides(data, overrides)
    where = source if not overrides else f"{source} (with --set {' '.join(overrides)})"
    try:
        return from_dict(data, schema, where)
    except RecursionError:  # a section that contains itself through a YAML alias (`&a {x: *a}`)
        raise ConfigError(
            f"{where}: sections nested too deeply (or through a YAML alias, in themselves)"
        ) from None


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``a.b.c=value`` set; values are parsed as YAML scalars (``3``, ``1e-3``,
    ``true``, ``[1, 2]``) and checked against the schema later, with everything else.

    Only the sections on an override's path are copied (copy on write), never the whole tree: YAML aliases
    can make a small file name one section 2**40 times (``b: {x: *a, y: *a}``, 40 deep) or make a section
    contain itself, and ``data`` (with every other alias of a changed section) stays as it was."""
    result = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, _, raw = item.partition("=")
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key segment in {key!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if child is not None and not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node[part] = child = {} if child is None else dict(child)
            node = child
        node[parts[-1]] = value
    return result


def from_dict(data: Mapping[str, Any], schema: type[T], source: str = "<dict>") -> T:
    """Build ``schema`` from plain data, checking every key and type; errors name the key and ``source``."""
    return _convert(data, schema, "", source)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain, YAML- and ``weights_only``-safe data (dicts, lists, str, int, float, bool, None)."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"expected a config dataclass, got {type(config).__name__}")
    return _plain(config)


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (the ``config.yaml`` of a run directory)."""
    return write_text(path, dump_config(config))


def dump_config(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None)


# --------------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlevel = 3


def _show(value: Any) -> str:
    """A value for an error message, shortened: a YAML alias can make a huge (or self-containing) one."""
    return _REPR.repr(value)


def _where(key: str, source: str) -> str:
    return f"key '{key}' in {source}" if key else f"top level of {source}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(value, tp, key, source)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{_where(key, source)}: {_show(value)} fits none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value in args:
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{_where(key, source)}: {_show(value)} is not one of {choices}")
    if origin in (list, Sequence) or tp is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_where(key, source)}: expected a list, got {_show(value)}")
        item = args[0] if args else Any
        return [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_where(key, source)}: expected a list, got {_show(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"{_where(key, source)}: expected {len(args)} items, got {len(value)}")
        if not args:
            return tuple(value)
        return tuple(_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{_where(key, source)}: expected a mapping, got {_show(value)}")
        kt, vt = args if args else (Any, Any)
        return {
            _convert(k, kt, f"{key}.{k}", source): _convert(v, vt, f"{key}.{k}", source)
            for k, v in value.items()
        }
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{_where(key, source)}: expected true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{_where(key, source)}: expected an integer, got {_show(value)}")
    if tp is float:
        number = None
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            # YAML 1.1 reads "1e-3" (no dot) as a string; accept what Python reads as a number.
            with contextlib.suppress(ValueError, OverflowError):  # OverflowError: an int past float range
                number = float(value)
        if number is not None and math.isfinite(number):  # nan/inf: no setting means them, all break later
            return number
        raise ConfigError(f"{_where(key, source)}: expected a finite number, got {_show(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{_where(key, source)}: expected a string, got {_show(value)} (quote it in YAML)")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"{_where(key, source)}: expected a path, got {_show(value)}")
    raise TypeError(f"config schema uses an unsupported type {_type_name(tp)} at {_where(key, source)}")


def _convert_dataclass(value: Any, tp: type, key: str, source: str) -> Any:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{_where(key, source)}: expected a section (mapping), got {_show(value)}")
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
    unknown = [k for k in value if k not in fields]
    if unknown:
        bad = f"{key}.{unknown[0]}" if key else str(unknown[0])
        known = ", ".join(fields)
        raise ConfigError(f"unknown key '{bad}' in {source} (section '{key or tp.__name__}' has: {known})")
    kwargs = {}
    for name, field in fields.items():
        sub = f"{key}.{name}" if key else name
        if name in value:
            kwargs[name] = _convert(value[name], hints[name], sub, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{sub}' in {source}")
    try:
        return tp(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{_where(key, source)}: {exc}") from None
