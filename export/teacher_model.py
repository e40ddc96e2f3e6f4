"""The wav2vec 2.0 teacher: a Hugging Face `Wav2Vec2Model` with a Linear head.

The paper classifies from the FIRST context vector c_1 (pooling "first"); a
masked mean over frames is an option. The teacher exists to hand its attention
maps to the students, so this module makes a silent `None`/empty attention tuple
impossible: the backbone is always built with eager attention (SDPA returns an
empty tuple without complaint), `forward(..., output_attentions=True)` switches
a backbone someone set to another implementation back to eager, and it raises if
any layer's map is missing (LayerDrop in train mode skips layers).

torch + transformers only: this module never imports TensorFlow.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import types
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import Wav2Vec2Config, Wav2Vec2Model

from export.teacher_configs import NAMED_CONFIGS, config_shape, named_config  # noqa: F401 - config_shape: for export.finetune
from kws_kd.atomic import atomic_dir
from kws_kd.audio import SAMPLE_RATE
from kws_kd.errors import KwsKdError

TEACHER_JSON = "teacher.json"
HEAD_FILE = "head.safetensors"
POOLINGS = ("first", "mean")

@dataclass
class TeacherOutput:
    """What the teacher returns: logits [B, C], per-layer maps [B, heads, T, T] (or None), frame mask [B, T]."""

    logits: Tensor
    attentions: tuple[Tensor, ...] | None
    frame_mask: Tensor


class FeatureMask(nn.Module):
    """The paper's SpecAugment for the teacher: with probability p per clip, zero
    `num_masks` bands of `width` x hidden channels of the projected features.

    Applied (train mode only) to the output of the feature projection, where the
    HF model applies its own feature masks, so every channel is masked for all frames.
    """

    def __init__(self, p: float = 0.0, num_masks: int = 2, width: float = 0.1):
        super().__init__()
        self.p, self.num_masks, self.width = p, num_masks, width
        self.generator: torch.Generator | None = None

    def forward(self, hidden: Tensor) -> Tensor:
        if not self.training or self.p <= 0:
            return hidden
        batch, _, channels = hidden.shape
        band = max(1, int(round(self.width * channels)))
        gen = self.generator
        apply = torch.rand(batch, generator=gen) < self.p
        keep = torch.ones(batch, channels)
        for b in torch.nonzero(apply).flatten().tolist():
            for _ in range(self.num_masks):
                start = int(torch.randint(0, channels - band + 1, (1,), generator=gen))
                keep[b, start : start + band] = 0.0
        return hidden * keep.to(hidden.device, hidden.dtype)[:, None, :]


def _float32_under_autocast(module: nn.Module, hidden_states: Tensor) -> Tensor:
    """The positional conv embedding's forward, always in float32.

    Under CPU bfloat16 autocast the grouped conv (16 groups, kernel 64 in small-cpu) goes to a
    oneDNN AMX bf16 kernel that returns wrong values on this machine (torch 2.13: relative error
    ~1.1 against float32 for groups 16 and even kernels >= 8; correct with oneDNN off or in
    float32; cf. pytorch/pytorch#169688 for another oneDNN bf16 conv bug). It is a few per cent of
    the compute, so it simply runs in float32. Bound per instance (types.MethodType), so deepcopy
    rebinds it to the copy.
    """
    device = hidden_states.device.type
    if torch.is_autocast_enabled(device):
        with torch.autocast(device, enabled=False):
            return type(module).forward(module, hidden_states.float())
    return type(module).forward(module, hidden_states)


class TeacherClassifier(nn.Module):
    """wav2vec 2.0 + Linear head on c_1 ("first") or on the masked mean ("mean")."""

    def __init__(self, wav2vec2: Wav2Vec2Model, labels: list[str], *, pooling: str = "first",
                 multi_label: bool = False, source: str = ""):
        super().__init__()
        if pooling not in POOLINGS:
            raise KwsKdError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        if not labels:
            raise KwsKdError("the teacher needs at least one label")
        self.wav2vec2 = wav2vec2
        self.labels = list(labels)
        self.pooling = pooling
        self.multi_label = multi_label
        self.source = source
        cfg = wav2vec2.config
        self.dropout = nn.Dropout(getattr(cfg, "final_dropout", 0.0))
        self.head = nn.Linear(cfg.hidden_size, len(self.labels))
        self.spec_augment = FeatureMask()
        wav2vec2.feature_projection.register_forward_hook(self._augment_hook)
        pos = getattr(wav2vec2.encoder, "pos_conv_embed", None)
        if pos is not None:
            pos.forward = types.MethodType(_float32_under_autocast, pos)
        self._force_eager()

    # -- geometry ---------------------------------------------------------------
    @property
    def receptive_field_samples(self) -> int:
        """Samples needed for one output frame; shorter audio cannot be encoded."""
        field = 1
        for k, s in reversed(list(zip(self.wav2vec2.config.conv_kernel, self.wav2vec2.config.conv_stride))):
            field = (field - 1) * s + k
        return field

    @property
    def frame_rate(self) -> float:
        return SAMPLE_RATE / math.prod(self.wav2vec2.config.conv_stride)

    def num_frames(self, num_samples: int) -> int:
        n = int(num_samples)
        for k, s in zip(self.wav2vec2.config.conv_kernel, self.wav2vec2.config.conv_stride):
            n = (n - k) // s + 1
        return max(n, 0)

    # -- forward ----------------------------------------------------------------
    def _force_eager(self) -> None:
        if self.wav2vec2.config._attn_implementation != "eager":
            if hasattr(self.wav2vec2, "set_attn_implementation"):
                self.wav2vec2.set_attn_implementation("eager")
            else:  # older transformers
                self.wav2vec2.config._attn_implementation = "eager"

    def _augment_hook(self, module, inputs, output):
        if not self.training or self.spec_augment.p <= 0:
            return output
        hidden, *rest = output
        return (self.spec_augment(hidden), *rest)

    def forward(self, input_values: Tensor, attention_mask: Tensor | None = None,
                output_attentions: bool = False) -> TeacherOutput:
        """Classify [B, samples] float audio at 16 kHz; optionally return every layer's attention."""
        if input_values.dim() != 2:
            raise KwsKdError(f"teacher input must be [batch, samples], got shape {tuple(input_values.shape)}")
        n = input_values.shape[-1]
        if n < self.receptive_field_samples:
            raise KwsKdError(
                f"audio of {n} samples ({n / SAMPLE_RATE:.4f} s) is shorter than the teacher's "
                f"receptive field of {self.receptive_field_samples} samples"
            )
        if output_attentions:
            self._force_eager()
        out = self.wav2vec2(input_values, attention_mask=attention_mask,
                            output_attentions=output_attentions, return_dict=True)
        hidden = out.last_hidden_state
        frames = hidden.shape[1]
        if attention_mask is not None:
            frame_mask = self.wav2vec2._get_feature_vector_attention_mask(frames, attention_mask).bool()
        else:
            frame_mask = torch.ones(hidden.shape[0], frames, dtype=torch.bool, device=hidden.device)
        if self.pooling == "first":
            pooled = hidden[:, 0]
        else:
            w = frame_mask.to(hidden.dtype)[..., None]
            pooled = (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)
        logits = self.head(self.dropout(pooled))
        attentions = None
        if output_attentions:
            attentions = tuple(out.attentions) if out.attentions is not None else ()
            expected = self.wav2vec2.config.num_hidden_layers
            if len(attentions) != expected or any(a is None for a in attentions):
                got = sum(a is not None for a in attentions)
                raise KwsKdError(
                    f"the teacher returned {got} of {expected} attention maps "
                    "(LayerDrop skips layers in train mode: call model.eval() before asking for attentions)"
                )
        return TeacherOutput(logits=logits, attentions=attentions, frame_mask=frame_mask)

    def describe(self) -> dict:
        """The metadata saved as teacher.json."""
        cfg = self.wav2vec2.config
        return {
            "format": "kws-kd-teacher",
            "version": 1,
            "labels": self.labels,
            "pooling": self.pooling,
            "multi_label": self.multi_label,
            "source": self.source,
            "sample_rate": SAMPLE_RATE,
            "frame_rate": self.frame_rate,
            "receptive_field_samples": self.receptive_field_samples,
            "num_layers": cfg.num_hidden_layers,
            "num_heads": cfg.num_attention_heads,
            "hidden_size": cfg.hidden_size,
            "num_parameters": sum(p.numel() for p in self.parameters()),
        }


def _backbone_from_config(cfg: Wav2Vec2Config) -> Wav2Vec2Model:
    # `_from_config(cfg, attn_implementation=...)` mutates cfg: work on a copy.
    cfg = copy.deepcopy(cfg)
    return Wav2Vec2Model._from_config(cfg, attn_implementation="eager")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise KwsKdError(f"{path}: cannot read ({exc})") from None


def _backbone_from_dir(directory: Path) -> Wav2Vec2Model:
    """Load a local HF wav2vec 2.0 checkpoint (Wav2Vec2Model, ForPreTraining, ForCTC, ...)."""
    if not directory.is_dir():
        raise KwsKdError(f"{directory}: not a folder, and not a named teacher config ({', '.join(NAMED_CONFIGS)})")
    cfg_path = directory / "config.json"
    if not cfg_path.is_file():
        raise KwsKdError(f"{directory}: no config.json; not a Hugging Face wav2vec 2.0 checkpoint")
    model_type = _read_json(cfg_path).get("model_type")
    if model_type != "wav2vec2":
        raise KwsKdError(f"{cfg_path}: model_type is {model_type!r}, not 'wav2vec2'; not a wav2vec 2.0 checkpoint")
    weights = list(directory.glob("*.safetensors")) + list(directory.glob("*.bin"))
    if not weights:
        raise KwsKdError(f"{directory}: no weights (*.safetensors or *.bin) next to config.json")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return Wav2Vec2Model.from_pretrained(str(directory), attn_implementation="eager", local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KwsKdError(f"{directory}: cannot load the wav2vec 2.0 weights ({first})") from None


def build_teacher(source: str | Wav2Vec2Config, labels: list[str], *, pooling: str = "first",
                  multi_label: bool = False) -> TeacherClassifier:
    """A teacher with a fresh head: `source` is a named config (random init), a local
    HF wav2vec 2.0 checkpoint folder (pretrained backbone), or a `Wav2Vec2Config`."""
    if isinstance(source, Wav2Vec2Config):
        backbone, name = _backbone_from_config(source), "config"
    elif str(source) in NAMED_CONFIGS:
        backbone, name = _backbone_from_config(named_config(str(source))), str(source)
    else:
        path = Path(source).expanduser()
        if not path.exists() and "/" not in str(source) and not str(source).startswith("."):
            named_config(str(source))  # raises the "unknown config" error
        backbone, name = _backbone_from_dir(path), str(path.resolve())
    return TeacherClassifier(backbone, labels, pooling=pooling, multi_label=multi_label, source=name)


def save_teacher(model: TeacherClassifier, directory: str | Path, extra: dict | None = None, *,
                 dtype: torch.dtype | None = None) -> None:
    """Write `save_pretrained` safetensors + config.json, the head, and teacher.json, atomically.

    The folder is itself a valid HF wav2vec 2.0 checkpoint, so it can seed another fine-tune.
    `dtype=torch.float16` stores the weights in half precision (shipping: half the size);
    `load_teacher` always returns a float32 model.
    """
    from safetensors.torch import save_file

    model = getattr(model, "module", model)  # unwrap DDP
    meta = model.describe()
    if dtype is not None:
        meta["weights_dtype"] = str(dtype).replace("torch.", "")
    if extra:
        meta.update(extra)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    backbone, head = model.wav2vec2, model.head.state_dict()
    if dtype is not None:
        backbone = copy.deepcopy(backbone).to(dtype)
        head = {k: v.to(dtype) for k, v in head.items()}
    with atomic_dir(directory, overwrite=True) as tmp:
        backbone.save_pretrained(str(tmp), safe_serialization=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in head.items()}, str(tmp / HEAD_FILE))
        (tmp / TEACHER_JSON).write_text(json.dumps(meta, indent=2) + "\n")


def read_teacher_json(directory: str | Path) -> dict | None:
    """teacher.json of a saved teacher, or None for a plain HF checkpoint."""
    path = Path(directory) / TEACHER_JSON
    return _read_json(path) if path.is_file() else None


def load_teacher(directory: str | Path) -> TeacherClassifier:
    """Load a folder written by `save_teacher`, in eval mode with eager attention."""
    from safetensors.torch import load_file

    directory = Path(directory).expanduser()
    meta = read_teacher_json(directory)
    if meta is None:
        raise KwsKdError(f"{directory}: no {TEACHER_JSON}; not a kws-kd teacher (a plain wav2vec 2.0 checkpoint goes to build_teacher)")
    if not (directory / HEAD_FILE).is_file():
        raise KwsKdError(f"{directory}: {HEAD_FILE} is missing")
    backbone = _backbone_from_dir(directory)
    model = TeacherClassifier(backbone, meta["labels"], pooling=meta.get("pooling", "first"),
                              multi_label=bool(meta.get("multi_label", False)), source=meta.get("source", ""))
    head = load_file(str(directory / HEAD_FILE))
    model.float()  # a shipped folder holds float16 weights; the teacher always computes in float32
    try:
        model.head.load_state_dict({k: v.float() for k, v in head.items()})
    except RuntimeError as exc:
        raise KwsKdError(f"{directory / HEAD_FILE}: does not match {TEACHER_JSON} ({str(exc).splitlines()[0]})") from None
    return model.eval()


def checkpoint_hash(directory: str | Path) -> str:
    """SHA-256 over the weight files and teacher.json: identifies the exact teacher."""
    directory = Path(directory)
    files = sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin"))
    files.append(directory / TEACHER_JSON)
    h = hashlib.sha256()
    for f in files:
        if not f.is_file():
            raise KwsKdError(f"{f}: missing; cannot hash the teacher checkpoint")
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
