"""One typed definition of a command's options: the dataclass is the schema, the argparse flags and the config.

Why: an option used to be written out in an argparse call, an options
dataclass, a run-config dataclass and an experiment dataclass, and their
defaults drifted. Now a command's options are one dataclass whose fields carry
their help, bounds and flag spelling (`option(...)`); `add_arguments` builds
the argparse flags from it, `from_namespace` builds the dataclass back, and
`check` validates an instance with one-line errors naming the flag. Enumerated
modes are `Literal` types, so their choices are the type.

Another command reuses a field's definition with its own default through
`like(Cls, "field", default)`: one meaning and one help text, per-command
defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

from kws_kd.errors import KwsKdError

_META = "kws_kd_option"


def option(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None,
           off_flag: str | None = None, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, cli: bool = True, in_config: bool = True, metavar: str | None = None):
    """A dataclass field with what its flag needs.

    `off_flag`: the flag that turns a True-by-default bool off (e.g.
    `--no-spec-augment`). `minimum`/`maximum` are inclusive bounds, `above` an
    exclusive lower bound. `cli=False`: no flag (set by code). `in_config=False`:
    not stored in config.json (e.g. the output folder itself).
    """
    meta = {_META: {"help": help, "flag": flag, "off_flag": off_flag, "minimum": minimum, "maximum": maximum,
                    "above": above, "cli": cli, "in_config": in_config, "metavar": metavar}}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def like(cls: type, name: str, default: Any = dataclasses.MISSING, **changes):
    """Field `name` of options class `cls` (its help, bounds, flag), with another default."""
    meta = dict(_meta(_field(cls, name)))
    meta.update(changes)
    return option(default, **meta)


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def _meta(f: dataclasses.Field) -> dict:
    return f.metadata.get(_META, {"help": "", "flag": None, "off_flag": None, "minimum": None, "maximum": None,
                                  "above": None, "cli": True, "in_config": True, "metavar": None})


def flag_of(f: dataclasses.Field) -> str:
    return _meta(f)["flag"] or "--" + f.name.replace("_", "-")


def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def _strip_optional(tp):
    """(inner type, optional?) of `X | None` / `Optional[X]`."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def choices_of(tp) -> tuple | None:
    """The allowed values of a `Literal[...]` (optionally `| None`) type, else None."""
    tp, _ = _strip_optional(tp)
    return tuple(get_args(tp)) if get_origin(tp) is Literal else None


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({exc.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, only: tuple[str, ...] | None = None,
                  exclude: tuple[str, ...] = (), defaults: dict[str, Any] | None = None) -> None:
    """Add one flag per CLI field of `cls` (all, or `only` those), in field order.

    `defaults` gives this command's own default for some fields (shown in
    --help and set on the namespace); the others leave unset flags out of the
    namespace, so the dataclass default applies.
    """
    defaults = defaults or {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        meta = _meta(f)
        if not meta["cli"] or f.name in exclude or (only is not None and f.name not in only):
            continue
        tp, _ = _strip_optional(hints[f.name])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else (f.default if f.default is not dataclasses.MISSING else f.default_factory())
        kw: dict[str, Any] = {"help": meta["help"], "dest": f.name}
        if tp is bool:
            if default:
                parser.add_argument(meta["off_flag"] or f"--no-{f.name.replace('_', '-')}", action="store_false",
                                    default=argparse.SUPPRESS, **kw)
            else:
                parser.add_argument(flag_of(f), action="store_true", default=argparse.SUPPRESS, **kw)
            continue
        if choices_of(tp):
            kw["choices"] = list(choices_of(tp))
        elif get_origin(tp) is list:
            item = get_args(tp)[0] if get_args(tp) else str
            kw.update(type=_float_list if item is float else item, nargs="+", metavar=meta["metavar"] or
                      ("X" if item is float else item.__name__.upper()))
        elif tp is dict or get_origin(tp) is dict:
            kw.update(type=_json_dict, metavar=meta["metavar"] or "JSON")
        else:
            kw["type"] = tp
            if meta["metavar"]:
                kw["metavar"] = meta["metavar"]
        if f.name in defaults:
            default = defaults[f.name]
        if required and f.name not in defaults:
            kw.update(required=True, default=argparse.SUPPRESS)
        elif f.name in defaults:
            kw["default"] = default
            # argparse.ArgumentDefaultsHelpFormatter appends "(default: ...)" itself for a real default
            if default is not None and not issubclass(getattr(parser, "formatter_class", object),
                                                      argparse.ArgumentDefaultsHelpFormatter):
                kw["help"] = f"{meta['help']} (default: {_show(default)})"
        else:
            kw["default"] = argparse.SUPPRESS  # unset flags keep the dataclass default
            if default is not None and default != [] and default != {}:
                kw["help"] = f"{meta['help']} (default: {_show(default)})"
        parser.add_argument(flag_of(f), **kw)


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def from_namespace(cls: type, args: argparse.Namespace, **extra):
    """The options dataclass from parsed flags (unset flags take their defaults), plus `extra` fields."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in extra:
            values[f.name] = extra[f.name]
        elif hasattr(args, f.name):
            value = getattr(args, f.name)
            tp = _strip_optional(_hints(cls)[f.name])[0]
            if get_origin(tp) is list and get_args(tp) == (float,) and value is not None:  # "0.1,0.01" or "0.1 0.01"
                value = [x for part in value for x in (part if isinstance(part, list) else [part])]
            values[f.name] = value
    return check(cls(**values))


def check(obj):
    """Validate an options instance: choices and bounds, one line naming the flag. Returns `obj`."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        meta, value = _meta(f), getattr(obj, f.name)
        if value is None:
            continue
        name = flag_of(f) if meta["cli"] else f.name
        allowed = choices_of(hints[f.name])
        if allowed and value not in allowed:
            raise KwsKdError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if math.isnan(v) or (meta["minimum"] is not None and v < meta["minimum"]) \
                    or (meta["maximum"] is not None and v > meta["maximum"]) or (meta["above"] is not None and not v > meta["above"]):
                raise KwsKdError(f"{name} must be {_bounds(meta)}, got {value}")
        if isinstance(value, (list, tuple)) and not value and meta["above"] is not None:
            raise KwsKdError(f"{name} needs at least one value")
    return obj


def _bounds(meta: dict) -> str:
    lo, hi, above = meta["minimum"], meta["maximum"], meta["above"]
    if lo is not None and hi is not None:
        return f"in [{lo:g}, {hi:g}]"
    if above is not None:
        return f"> {above:g}"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def config_fields(cls: type) -> list[str]:
    """The fields stored in config.json."""
    return [f.name for f in dataclasses.fields(cls) if _meta(f)["in_config"]]
