"""`kws-kd teacher export`: run the teacher over a dataset and write the attention store.

Memory is bounded by the batch, not by the dataset nor by the depth of the
teacher: clips are read batch by batch, and a forward hook on every encoder
layer's attention module folds that layer's map into a running rollout
(`kws_kd.rollout.RolloutAccumulator`) as soon as it is produced. The model is
called WITHOUT `output_attentions`, so transformers never collects the tuple of
all layers' maps (24 x [B, 16, T, T] for XLSR-300M). The eager attention
implementation computes the weights anyway; a layer that yields none (SDPA,
flash) is an error, never a silent None.

Clips are sorted by length so a batch normally has equal lengths and needs no
padding; then a clip's vector does not depend on which other clips share its
batch (a sharded export equals an unsharded one). Mixed lengths in one batch
are zero-padded with an attention mask, and the padded frames are masked out
of the rollout.

torch only: never imports TensorFlow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from kws_kd.audio import SAMPLE_RATE, audio_info, pad_or_crop, read_audio
from kws_kd.data.manifest import SPLITS, ClipRecord, Manifest
from kws_kd.errors import KwsKdError
from kws_kd.rollout import RolloutAccumulator, RolloutOptions, resolve_layers
from kws_kd.store import (
    check_shard_layout,
    init_store,
    make_meta,
    shard_of,
    splits_key,
    write_shard,
)


@dataclass
class ExportSummary:
    """What one export call wrote, for the CLI and the benchmark."""

    store: Path
    shard_file: Path
    num_clips: int
    seconds: float

    @property
    def clips_per_second(self) -> float:
        return self.num_clips / self.seconds if self.seconds > 0 else float("nan")


def load_manifest(data: str | Path) -> Manifest:
    """The dataset through the project's one entry point (falls back to a manifest folder)."""
    try:
        from kws_kd.data.load import load_dataset
    except ImportError:  # the loader module may not exist yet in this checkout
        from kws_kd.data.manifest import read_manifest

        return read_manifest(data)
    return load_dataset(data)


def export_store(
    teacher: str | Path,
    data: str | Path | Manifest,
    out: str | Path,
    *,
    splits: Iterable[str] | None = None,
    batch_size: int = 8,
    num_shards: int = 1,
    shard_index: int = 0,
    rollout: RolloutOptions = RolloutOptions(),
    device: str | None = None,
    progress: bool = True,
) -> ExportSummary:
    """Export the store of a saved teacher folder (see export.teacher_model.save_teacher)."""
    from export.teacher_model import checkpoint_hash, load_teacher

    from kws_kd.store import check_compatible

    manifest = data if isinstance(data, Manifest) else load_manifest(data)
    teacher_hash = checkpoint_hash(teacher)
    # Refuse a foreign store before spending time loading the model.
    check_compatible(
        out,
        {
            "manifest_hash": manifest.content_hash(),
            "teacher_hash": teacher_hash,
            "rollout": rollout.to_dict(),
            "labels": list(manifest.label_names),
            "multi_label": bool(manifest.multi_label),
        },
    )
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    model = load_teacher(teacher)
    info = dict(model.describe(), checkpoint=str(Path(teacher).resolve()))
    info["config"] = _json_safe(model.wav2vec2.config.to_dict())
    return export_with_model(
        model,
        manifest,
        out,
        teacher_hash=teacher_hash,
        teacher_info=info,
        splits=splits,
        batch_size=batch_size,
        num_shards=num_shards,
        shard_index=shard_index,
        rollout=rollout,
        device=device,
        progress=progress,
    )


def export_with_model(
    model,
    manifest: Manifest,
    out: str | Path,
    *,
    teacher_hash: str,
    teacher_info: dict | None = None,
    splits: Iterable[str] | None = None,
    batch_size: int = 8,
    num_shards: int = 1,
    shard_index: int = 0,
    rollout: RolloutOptions = RolloutOptions(),
    device: str | None = None,
    progress: bool = True,
) -> ExportSummary:
    """Export with an in-memory `TeacherClassifier` (tests, benchmarks); `teacher_hash` names it."""
    out = Path(out)
    splits = tuple(SPLITS if splits is None else splits)
    key = splits_key(splits)
    if batch_size < 1:
        raise KwsKdError(f"batch size must be >= 1, got {batch_size}")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise KwsKdError(f"--shard-index {shard_index} is out of range for --num-shards {num_shards}")
    if list(model.labels) != list(manifest.label_names):
        raise KwsKdError(
            f"{manifest.root}: the dataset's labels {manifest.label_names} differ from the teacher's {list(model.labels)}"
        )
    if bool(model.multi_label) != bool(manifest.multi_label):
        raise KwsKdError(
            f"{manifest.root}: the dataset is {'multi' if manifest.multi_label else 'single'}-label "
            f"but the teacher is {'multi' if model.multi_label else 'single'}-label"
        )
    num_layers = int(model.wav2vec2.config.num_hidden_layers)
    resolve_layers(rollout.layers, num_layers)  # a bad layer range fails before any work

    meta = make_meta(
        manifest_hash=manifest.content_hash(),
        labels=manifest.label_names,
        multi_label=manifest.multi_label,
        teacher_hash=teacher_hash,
        teacher=teacher_info or {},
        frame_rate=model.frame_rate,
        sample_rate=SAMPLE_RATE,
        rollout=rollout,
        dataset=str(manifest.root),
    )
    init_store(out, meta)
    check_shard_layout(out, key.split("+"), num_shards)

    clips = [c for c in manifest.clips if c.split in key.split("+") and shard_of(c.clip_id, num_shards) == shard_index]
    clip_samples = round(manifest.clip_seconds * SAMPLE_RATE) if manifest.clip_seconds else None
    ordered = _order_by_length(clips, clip_samples)

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    matmul = _device_matmul(device)
    ids: list[str] = []
    clip_splits: list[str] = []
    vectors: list[np.ndarray] = []
    logits_rows: list[np.ndarray] = []
    start = time.perf_counter()
    bar = _progress(len(ordered), progress, f"teacher export {key} shard {shard_index + 1}/{num_shards}")
    with LayerAttentionTap(model) as tap, torch.inference_mode():
        for first in range(0, len(ordered), batch_size):
            batch = ordered[first : first + batch_size]
            audio = [_read_clip(c, clip_samples, model.receptive_field_samples) for c in batch]
            lengths = [len(a) for a in audio]
            frames = [model.num_frames(n) for n in lengths]
            t = max(frames)
            x = np.zeros((len(batch), max(lengths)), dtype=np.float32)
            for i, a in enumerate(audio):
                x[i, : len(a)] = a
            padded = len(set(lengths)) > 1
            mask = np.arange(t)[None, :] < np.array(frames)[:, None]
            attention_mask = None
            if padded:
                attention_mask = torch.from_numpy((np.arange(x.shape[1])[None, :] < np.array(lengths)[:, None]).astype(np.int64)).to(device)
            tap.start(RolloutAccumulator.from_options(num_layers, rollout, mask if padded else None, matmul))
            output = model(torch.from_numpy(x).to(device), attention_mask=attention_mask, output_attentions=False)
            result = tap.finish()
            batch_logits = output.logits.float().cpu().numpy()
            for i, c in enumerate(batch):
                ids.append(c.clip_id)
                clip_splits.append(c.split)
                vectors.append(result[i, : frames[i]].astype(np.float32))
                logits_rows.append(batch_logits[i])
            bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - start
    logits = np.stack(logits_rows) if logits_rows else np.zeros((0, len(manifest.label_names)), np.float32)
    shard_file = write_shard(
        out,
        meta,
        splits=key.split("+"),
        shard_index=shard_index,
        num_shards=num_shards,
        clip_ids=ids,
        clip_splits=clip_splits,
        attentions=vectors,
        logits=logits,
    )
    return ExportSummary(store=out, shard_file=shard_file, num_clips=len(ids), seconds=seconds)


class LayerAttentionTap:
    """Forward hooks on every encoder layer's attention module that stream the
    post-softmax weights into the current `RolloutAccumulator`, layer by layer.

    The weights are converted to numpy and folded inside the hook, then dropped,
    so at most one layer's maps exist at a time.
    """

    def __init__(self, model) -> None:
        self.layers = list(model.wav2vec2.encoder.layers)
        self._handles: list = []
        self._acc: RolloutAccumulator | None = None

    def __enter__(self) -> "LayerAttentionTap":
        for index, layer in enumerate(self.layers):
            self._handles.append(layer.attention.register_forward_hook(self._hook(index)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def start(self, accumulator: RolloutAccumulator) -> None:
        self._acc = accumulator

    def finish(self) -> np.ndarray:
        acc, self._acc = self._acc, None
        if acc is None:
            raise RuntimeError("LayerAttentionTap.finish() without start()")
        return acc.result()  # raises if a layer was skipped (LayerDrop)

    def _hook(self, index: int):
        def hook(module, inputs, output):
            if self._acc is None:
                return None
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise KwsKdError(
                    f"encoder layer {index} returned no attention weights: the teacher must use eager attention "
                    "(SDPA and flash attention do not expose them)"
                )
            # Fuse the heads on the device first (float32): only [B, 1, T, T] crosses to numpy,
            # where fusing one head again is the identity.
            w = weights.detach().float()
            fused = w.mean(dim=1, keepdim=True) if self._acc.head_fusion == "mean" else w.amax(dim=1, keepdim=True)
            self._acc.update(fused.cpu().numpy())
            return None

        return hook


def _device_matmul(device):
    """Batched float64 matmul for the rollout fold, on the model's device: torch's BLAS ran
    [16, 399, 399] @ [16, 399, 399] about 6x faster than numpy's stacked matmul here (2 CPU cores)."""

    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return torch.bmm(torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)).cpu().numpy()

    return matmul


def _order_by_length(clips: Sequence[ClipRecord], clip_samples: int | None) -> list[ClipRecord]:
    """Sort by (length, clip id) so batches rarely need padding; fixed-length data keeps id order."""
    if clip_samples is not None:
        return sorted(clips, key=lambda c: c.clip_id)

    def length(c: ClipRecord) -> int:
        if not c.path:
            return SAMPLE_RATE
        rate, _, frames = audio_info(c.path)
        return round(frames * SAMPLE_RATE / rate)

    return sorted(clips, key=lambda c: (length(c), c.clip_id))


def _read_clip(clip: ClipRecord, clip_samples: int | None, receptive_field: int) -> np.ndarray:
    if not clip.path:
        # A Speech Commands `_silence_` placeholder (training-archive layout): digital silence,
        # as kws_kd.data.speech_commands.load_clip gives the students.
        return np.zeros(clip_samples or SAMPLE_RATE, dtype=np.float32)
    audio = read_audio(clip.path)
    if clip_samples is not None:
        audio = pad_or_crop(audio, clip_samples)  # the dataset's fixed length, zero-padded at the end
    if len(audio) < receptive_field:
        raise KwsKdError(
            f"{clip.path}: {len(audio)} samples ({len(audio) / SAMPLE_RATE:.4f} s) is shorter than the teacher's "
            f"receptive field of {receptive_field} samples"
        )
    return audio


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, disable=None if enabled else True, desc=desc, unit="clip", dynamic_ncols=True)


def _json_safe(obj):
    import json

    return json.loads(json.dumps(obj, default=str))
