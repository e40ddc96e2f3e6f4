"""The student registry: name -> `StudentSpec` (config dataclass + builder).

To add a student: write `kws_kd/students/<name>.py` exposing `SPEC` (see
docs/students.md) and add `<name>.SPEC` to `_SPECS` below.
"""

from __future__ import annotations

from typing import Any

import keras

from kws_kd.errors import KwsKdError
from kws_kd.students import att_rnn, crnn, lstm_p, mhatt_rnn, tc_resnet
from kws_kd.students.attention import strip
from kws_kd.students.base import BuildOptions, StudentSpec, assemble, config_from_dict, config_to_dict, layer_precision

_SPECS = (lstm_p.SPEC, tc_resnet.SPEC, crnn.SPEC, att_rnn.SPEC, mhatt_rnn.SPEC)

STUDENTS: dict[str, StudentSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> StudentSpec:
    try:
        return STUDENTS[name]
    except KeyError:
        raise KwsKdError(f"unknown student {name!r}; choose one of: {', '.join(STUDENTS)}") from None


def default_config(name: str) -> Any:
    """The paper-recipe config of a student."""
    return get_spec(name).config_class()


def make_config(name: str, values: dict | None = None) -> Any:
    """A student config from a (possibly partial) dict, e.g. `config.json` of a run."""
    return config_from_dict(get_spec(name).config_class, values or {})


def build_student(
    name: str,
    num_labels: int,
    clip_samples: int,
    config: Any = None,
    *,
    attention: bool = True,
    batch_size: int | None = None,
    for_export: bool = False,
    fast_graph: bool = True,
    precision: str = "float32",
    features_input: bool = False,
) -> keras.Model:
    """Build a student that eats raw 16 kHz audio [B, clip_samples].

    `attention=True` gives the training model with outputs [logits, a_S]
    (a_S: [B, n'], softmax over time); `attention=False` the vanilla student
    (logits only). `for_export=True` fixes the batch to 1 (unless given),
    unrolls every recurrence (no WHILE op in TFLite) and uses the
    quantization-safe front end; the weights are the same as in a training
    build of any clip length, so `set_weights(other.get_weights())` works.
    `fast_graph`, `precision` and `features_input` choose the training graph's
    form (`BuildOptions`); an export build ignores them.
    """
    spec = get_spec(name)
    if config is None:
        config = spec.config_class()
    elif isinstance(config, dict):
        config = config_from_dict(spec.config_class, config)
    elif not isinstance(config, spec.config_class):
        raise KwsKdError(f"{name}: config must be a {spec.config_class.__name__}, got {type(config).__name__}")
    if num_labels < 1:
        raise KwsKdError(f"{name}: num_labels must be >= 1, got {num_labels}")
    spec.attention_length(config, clip_samples)  # raises a clear error for too-short clips
    if for_export and batch_size is None:
        batch_size = 1
    options = BuildOptions(int(num_labels), int(clip_samples), batch_size, bool(for_export), bool(fast_graph),
                           precision, bool(features_input))
    with layer_precision(options):
        layers = spec.make_layers(config, options)
    return assemble(spec, config, layers, options, attention=attention)


def attention_length(name: str, clip_samples: int, config: Any = None) -> int:
    """n': the number of time steps of the student's attention for a clip length."""
    spec = get_spec(name)
    return spec.attention_length(config if config is not None else spec.config_class(), clip_samples)


__all__ = [
    "STUDENTS",
    "attention_length",
    "build_student",
    "config_to_dict",
    "default_config",
    "get_spec",
    "make_config",
    "strip",
]
