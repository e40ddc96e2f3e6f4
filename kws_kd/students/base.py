"""What every student provides, and how a student graph is assembled.

A student is a `StudentSpec`: a typed config dataclass, `make_layers` (creates
every layer that owns weights, once) and `forward` (wires those layers from the
raw-audio input to (logits, attention)). Keeping layer creation apart from the
wiring is what makes `strip` exact: the inference graph is the same `forward`
called with `attention=False` on the same layer objects, so it shares the
trained variables and is, by construction, the vanilla student's graph.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import keras

from kws_kd.errors import KwsKdError
from kws_kd.features import FrontEndConfig, MfccFrontEnd, SpecAugment, num_frames


@dataclass(frozen=True)
class BuildOptions:
    """Everything about a build that is not the student's hyper-parameters."""

    num_labels: int
    clip_samples: int
    batch_size: int | None = None
    for_export: bool = False


@dataclass(frozen=True)
class StudentSpec:
    """A registered student. `branch` is True when its attention is a removable branch."""

    name: str
    config_class: type
    make_layers: Callable[[Any, BuildOptions], dict]
    forward: Callable[..., tuple]
    attention_length: Callable[[Any, int], int]
    branch: bool
    summary: str


@dataclass(frozen=True)
class StudentInfo:
    """Kept on every built model so `strip` can re-wire it."""

    spec: StudentSpec
    config: Any
    layers: dict
    options: BuildOptions
    attention: bool


INFO_ATTR = "_kws_kd_student"


def student_info(model: keras.Model) -> StudentInfo:
    info = getattr(model, INFO_ATTR, None)
    if info is None:
        raise KwsKdError(f"model {model.name!r} was not built by kws_kd.students.build_student")
    return info


def front_end_layers(front_end: FrontEndConfig, spec_augment: bool, options: BuildOptions) -> dict:
    """The MFCC layer and, if enabled, SpecAugment (dynamic-range export: `features.dynamic_range_safe`)."""
    layers = {"mfcc": MfccFrontEnd(front_end, name="mfcc")}
    if spec_augment:
        layers["spec_augment"] = SpecAugment(name="spec_augment")
    return layers


def features(layers: dict, audio):
    x = layers["mfcc"](audio)
    if "spec_augment" in layers:
        x = layers["spec_augment"](x)
    return x


def assemble(spec: StudentSpec, config: Any, layers: dict, options: BuildOptions, attention: bool) -> keras.Model:
    """Wire `layers` into a functional model: outputs [logits, attention] or logits."""
    audio = keras.Input((options.clip_samples,), batch_size=options.batch_size, name="audio")
    logits, weights = spec.forward(layers, config, audio, options, attention=attention)
    outputs = [logits, weights] if attention else logits
    model = keras.Model(audio, outputs, name=spec.name)
    object.__setattr__(model, INFO_ATTR, StudentInfo(spec, config, layers, options, attention))
    return model


def frames_for(config: Any, clip_samples: int) -> int:
    return num_frames(clip_samples, config.front_end)


def config_to_dict(config: Any) -> dict:
    """JSON-ready dict of a student config (front end nested, tuples as lists)."""
    return dataclasses.asdict(config)


def config_from_dict(config_class: type, values: dict) -> Any:
    """Inverse of `config_to_dict`; unknown keys are a KwsKdError, missing ones take defaults."""
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise KwsKdError(f"{config_class.__name__}: unknown option(s) {', '.join(unknown)}")
    kwargs = {}
    for key, value in values.items():
        if key == "front_end" and isinstance(value, dict):
            value = FrontEndConfig(**value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[key] = value
    return config_class(**kwargs)
