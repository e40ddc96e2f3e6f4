"""What every student provides, and how a student graph is assembled.

A student is a `StudentSpec`: a typed config dataclass, `make_layers` (creates
every layer that owns weights, once) and `forward` (wires those layers from the
raw-audio input to (logits, attention)). Keeping layer creation apart from the
wiring is what makes `strip` exact: the inference graph is the same `forward`
called with `attention=False` on the same layer objects, so it shares the
trained variables and is, by construction, the vanilla student's graph.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import keras

from kws_kd.errors import KwsKdError
from kws_kd.graph_options import PRECISIONS
from kws_kd.features import FrontEndConfig, MfccFrontEnd, SpecAugment, num_frames


@dataclass(frozen=True)
class BuildOptions:
    """Everything about a build that is not the student's hyper-parameters.

    `fast_graph` and `precision` choose the *training* graph's form; they never
    change the weights or the maths, only how the host CPU computes them
    (`benchmarks/train_throughput.py` measures each): `tf.signal.stft` instead of
    the export's matmul DFT, convolutions laid out with time on the width axis,
    recurrences with hoisted input projections and a hand-written backward pass.
    An export build (`for_export`) always uses the plain float32 forms that
    convert to TFLite builtins. `features_input` builds the student without its
    front end: the model eats MFCCs [B, frames, coeffs] (training from a feature
    cache, `kws_kd.feature_cache`).
    """

    num_labels: int
    clip_samples: int
    batch_size: int | None = None
    for_export: bool = False
    fast_graph: bool = True
    precision: str = "float32"
    features_input: bool = False

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise KwsKdError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.for_export:  # exported graphs keep the forms TFLite converts with builtin ops
            object.__setattr__(self, "fast_graph", False)
            object.__setattr__(self, "precision", "float32")
            object.__setattr__(self, "features_input", False)

    @property
    def compute_dtype_policy(self) -> str:
        """Keras dtype policy of the layers that may run in reduced precision."""
        return self.precision


@dataclass(frozen=True)
class StreamStep:
    """What a student's `stream_step` returns: one frame of its graph, the state carried in and out.

    `states` are the `keras.Input`s of the carried tensors (batch 1, named:
    the names become the streaming file's input names), `next_states` their
    values after this frame, in the same order. For the first `warmup_frames`
    calls the runner holds the `recurrent` states at zero (buffers still filling).
    """

    states: dict
    logits: Any
    next_states: list
    warmup_frames: int = 0
    recurrent: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudentSpec:
    """A registered student: everything kws-kd knows about it lives here (its file fills it in).

    `branch` is True when its attention is a removable branch. `stream_step(layers,
    config, mfcc)` builds one 20 ms frame of the graph from the frame's MFCCs
    [1, 1, coeffs] (`kws_kd.tflite.streaming`); a student without one says why
    in `not_streamable`. `default_optimizer` is the paper recipe's optimizer
    (one of `kws_kd.train_options.Optimizer`), `short_run_config` the student-config overrides of a
    CPU-scale run of a few hundred steps (`kws_kd.experiment.training_recipe`).
    """

    name: str
    config_class: type
    make_layers: Callable[[Any, BuildOptions], dict]
    forward: Callable[..., tuple]
    attention_length: Callable[[Any, int], int]
    branch: bool
    summary: str
    stream_step: Callable[[dict, Any, Any], StreamStep] | None = None
    not_streamable: str = "it has no streaming form"
    default_optimizer: str = "adam"
    short_run_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def streamable(self) -> bool:
        return self.stream_step is not None


@dataclass(frozen=True)
class StudentInfo:
    """Kept on every built model so `strip` can re-wire it."""

    spec: StudentSpec
    config: Any
    layers: dict
    options: BuildOptions
    attention: bool

    @property
    def front_end(self) -> MfccFrontEnd:
        """The student's MFCC layer (the one `kws_kd.features.front_ends(model)` finds in its graph)."""
        return self.layers["mfcc"]


INFO_ATTR = "_kws_kd_student"


def student_info(model: keras.Model) -> StudentInfo:
    info = getattr(model, INFO_ATTR, None)
    if info is None:
        raise KwsKdError(f"model {model.name!r} was not built by kws_kd.students.build_student")
    return info


def front_end_layers(front_end: FrontEndConfig, spec_augment: bool, options: BuildOptions) -> dict:
    """The MFCC layer and, if enabled, SpecAugment (dynamic-range export: `features.dynamic_range_safe`).

    Both stay float32 whatever the training precision: log-mel energies span
    ~40 dB, more than bfloat16's 8-bit mantissa keeps.
    """
    fft = "stft" if options.fast_graph else "matmul"
    layers = {"mfcc": MfccFrontEnd(front_end, fft=fft, name="mfcc", dtype="float32")}
    if spec_augment:
        layers["spec_augment"] = SpecAugment(name="spec_augment", dtype="float32")
    return layers


def features(layers: dict, x, options: BuildOptions):
    """MFCCs of the model input (or the input itself when the build eats features), then SpecAugment."""
    if not options.features_input:
        x = layers["mfcc"](x)
    if "spec_augment" in layers:
        x = layers["spec_augment"](x)
    return x


@contextlib.contextmanager
def layer_precision(options: BuildOptions) -> Iterator[None]:
    """Create layers under the build's dtype policy (restored afterwards).

    Students create their layers inside this block; layers that must stay
    float32 (front end, attention, logits, recurrent cells) say so with
    `dtype="float32"`.
    """
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(options.compute_dtype_policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def model_input_shape(spec: "StudentSpec", config: Any, options: BuildOptions) -> tuple[int, ...]:
    """[samples] for an audio-input build, [frames, coeffs] for a features-input one."""
    if options.features_input:
        return (frames_for(config, options.clip_samples), int(config.front_end.num_coeffs))
    return (options.clip_samples,)


def assemble(spec: StudentSpec, config: Any, layers: dict, options: BuildOptions, attention: bool) -> keras.Model:
    """Wire `layers` into a functional model: outputs [logits, attention] or logits."""
    name = "features" if options.features_input else "audio"
    inputs = keras.Input(model_input_shape(spec, config, options), batch_size=options.batch_size, name=name)
    logits, weights = spec.forward(layers, config, inputs, options, attention=attention)
    outputs = [logits, weights] if attention else logits
    model = keras.Model(inputs, outputs, name=spec.name)
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
