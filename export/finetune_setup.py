"""What a teacher fine-tune run starts from: its options, its data sources, its model.

`FinetuneOptions` is the whole schema of `kws-kd teacher finetune` (the CLI
fills it, `export/command.py` builds it from JSON, the curriculum in
`export/curriculum.py` sets one per stage). `make_sources` turns a dataset into
per-split sample sources (fresh mixing or the clips as they are);
`check_init_from` and `build_model` decide the starting weights and refuse
mismatched folders before anything is written. Kept apart from the loop
(`export/finetune.py`) so that the shipping and attention checks, which need
the same sources, do not pull in the training loop.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.teacher_data import (
    ClipSource,
    MixSource,
    babble_pool,
    background_noise,
    noise_from_dir,
)
from export.teacher_model import (
    NAMED_CONFIGS,
    TeacherClassifier,
    build_teacher,
    config_shape,
    load_teacher,
    named_config,
    read_teacher_json,
)
from kws_kd.audio import SAMPLE_RATE
from kws_kd.data.manifest import Manifest
from kws_kd.errors import KwsKdError


@dataclass
class FinetuneOptions:
    """Every option of one fine-tune run (`kws-kd teacher finetune` flags; OUT/finetune.json)."""

    data: str
    out: str
    config: str | None = None  # a named config ("small-cpu", ...), random init
    checkpoint: str | None = None  # a local HF wav2vec 2.0 folder or a kws-kd teacher folder
    pooling: str = "first"
    batch_size: int = 16
    lr: float | None = None  # None: 5e-4 single-label, 2e-5 multi-label
    weight_decay: float = 0.01
    warmup_steps: int = 1000
    max_steps: int = 20000
    max_minutes: float | None = None
    clip_seconds: tuple[float, ...] | None = None  # None: the dataset's clip length
    clip_weights: tuple[float, ...] | None = None  # sampling weights of clip_seconds (per step)
    val_seconds: float | None = None  # None: 8 s with fresh mixing, else the dataset's clips
    fresh_mix: bool = False
    noise: str | None = None  # noise folder for fresh mixing (default: dataset's, else babble)
    eval_every: int = 500
    eval_clips: int | None = 300
    save_every: int = 100
    specaugment_p: float = 0.75
    grad_clip: float = 1.0
    seed: int = 0
    threads: int | None = None
    interop_threads: int | None = None  # torch inter-op threads (set once per process)
    precision: str = "float32"  # "bfloat16": forward under CPU/GPU autocast; loss, eval, test in float32
    init_from: str | None = None  # a kws-kd teacher folder of the --config's shape: start from its weights
    attention_dropout: float | None = None  # override the config's attention dropout (None: keep it)
    progress: bool = True
    log_every_s: float = 60.0  # off a terminal: one progress line every this many seconds (0 = none)
    test: bool = True  # evaluate the best checkpoint on the test split at the end

    def learning_rate(self, multi_label: bool) -> float:
        return self.lr if self.lr is not None else (2e-5 if multi_label else 5e-4)


def load_manifest(path: str) -> Manifest:
    """The dataset at `path`; it must have train and validation clips."""
    from kws_kd.data.load import load_dataset

    manifest = load_dataset(path)
    for split in ("train", "validation"):
        if not manifest.split(split):
            raise KwsKdError(f"{path}: the dataset has no {split} clips")
    return manifest


def _noise_for(manifest: Manifest, split: str, opts: FinetuneOptions, min_samples: int) -> list[np.ndarray]:
    noise_dir = opts.noise or manifest.info.get("noise_dir")
    if noise_dir:
        if not Path(noise_dir).is_dir():
            raise KwsKdError(f"{noise_dir}: noise folder does not exist")
        return noise_from_dir(noise_dir, min_samples)
    return babble_pool(manifest, split, seconds=max(30.0, 2 * min_samples / SAMPLE_RATE),
                       seed=opts.seed, progress=opts.progress)


def make_sources(manifest: Manifest, opts: FinetuneOptions,
                 splits: tuple[str, ...] = ("train", "validation")) -> dict:
    """Per split, a MixSource (fresh mixing) or a ClipSource (the clips as they are)."""
    longest = max(opts.clip_seconds or (1.0,))
    longest = max(longest, opts.val_seconds or 0.0)
    min_samples = int(round(longest * SAMPLE_RATE))
    out = {}
    background = background_noise(manifest) if opts.fresh_mix else []
    for split in splits:
        records = manifest.split(split)
        if opts.fresh_mix:
            out[split] = MixSource(records, manifest, _noise_for(manifest, split, opts, min_samples),
                                   background=background, progress=opts.progress)
        else:
            out[split] = ClipSource(records, manifest, progress=opts.progress)
    return out


def check_init_from(opts: FinetuneOptions, labels: list[str], multi_label: bool) -> None:
    """Refuse an --init-from folder that is not a kws-kd teacher of the --config's shape and the data's labels.

    One line naming the folder and what differs; called before anything is written.
    """
    src = opts.init_from
    if not src:
        return
    if opts.checkpoint:
        raise KwsKdError("--init-from goes with --config (the shape it must match), not with --checkpoint")
    folder = Path(src)
    meta = read_teacher_json(folder) if folder.is_dir() else None
    if meta is None or not (folder / "config.json").is_file():
        raise KwsKdError(f"{src}: not a kws-kd teacher folder (no teacher.json/config.json); --init-from needs one")
    try:
        theirs = config_shape(json.loads((folder / "config.json").read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise KwsKdError(f"{src}: cannot read config.json ({exc})") from None
    name = opts.config or "small-cpu"
    if name not in NAMED_CONFIGS:
        raise KwsKdError(f"--init-from needs a named --config ({', '.join(NAMED_CONFIGS)}), got {name!r}")
    ours = config_shape(named_config(name))
    diffs = [f"{k} {theirs[k]} vs {ours[k]}" for k in ours if theirs[k] != ours[k]]
    if list(meta.get("labels", [])) != list(labels):
        diffs.append(f"labels {meta.get('labels')} vs the data's {labels}")
    if meta.get("pooling", "first") != opts.pooling:
        diffs.append(f"pooling {meta.get('pooling')} vs {opts.pooling}")
    if bool(meta.get("multi_label", False)) != bool(multi_label):
        diffs.append(f"multi_label {meta.get('multi_label')} vs {multi_label}")
    if diffs:
        raise KwsKdError(f"{src}: not the shape of --config {name} (folder vs config): " + "; ".join(diffs))


def build_model(opts: FinetuneOptions, manifest: Manifest, load_init: bool = True) -> TeacherClassifier:
    """The model to train. With --init-from and `load_init`, an exact copy of that teacher's weights
    (on resume the saved state replaces them anyway, so the folder is not read)."""
    labels = list(manifest.label_names)
    if opts.checkpoint and opts.config:
        raise KwsKdError("give either --config or --checkpoint, not both")
    if opts.init_from:
        model = build_teacher(opts.config or "small-cpu", labels, pooling=opts.pooling, multi_label=manifest.multi_label)
        if load_init:
            model.load_state_dict(load_teacher(opts.init_from).state_dict())  # same shape (checked): exact copy
        return model
    if opts.checkpoint:
        meta = read_teacher_json(opts.checkpoint)
        if meta is not None:
            if list(meta["labels"]) != labels:
                raise KwsKdError(
                    f"{opts.checkpoint}: teacher labels {meta['labels']} differ from the data's labels {labels} "
                    f"({opts.data}); fine-tune from the plain wav2vec 2.0 checkpoint instead"
                )
            if bool(meta.get("multi_label")) != manifest.multi_label:
                raise KwsKdError(f"{opts.checkpoint}: multi_label={meta.get('multi_label')} but the data is "
                                 f"{'multi' if manifest.multi_label else 'single'}-label")
            return load_teacher(opts.checkpoint)
        return build_teacher(opts.checkpoint, labels, pooling=opts.pooling, multi_label=manifest.multi_label)
    return build_teacher(opts.config or "small-cpu", labels, pooling=opts.pooling, multi_label=manifest.multi_label)


def set_attention_dropout(model: TeacherClassifier, p: float) -> None:
    """Change the attention-probability dropout of every layer (the config is updated too)."""
    model.wav2vec2.config.attention_dropout = float(p)
    for layer in model.wav2vec2.encoder.layers:
        layer.attention.dropout = float(p)
