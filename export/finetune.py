"""Fine-tune (or train from scratch) the wav2vec 2.0 teacher: `kws-kd teacher finetune`.

The paper's recipe is the default: batch 16, AdamW at 5e-4 (single-label KWS) or
2e-5 (multi-label FSD50K), 1K warm-up steps then cosine decay, SpecAugment with
p=0.75 (two 10 % feature-channel masks). The best checkpoint by the validation
metric (accuracy, or mAP for multi-label) is kept in OUT/best.

Why the loop looks the way it does:
- Every step's randomness (which clips, which clip length, noise crop, offset,
  SpecAugment, dropout) is seeded from (seed, step, process), so a run resumed
  from OUT/state/state.pt continues exactly as an unbroken run would have.
- State (model, optimizer, scheduler, RNG, step, best, history) is saved
  atomically every `save_every` steps and on stop, so a kill loses little.
- `accelerate.Accelerator` wraps model and optimizer, so `accelerate launch`
  or `torchrun` train on several GPUs; on a CPU it is a single process.
- `precision="bfloat16"` runs the forward pass under `torch.autocast(bfloat16)`
  (on a CPU with AMX/AVX512-BF16 about 1.4x cheaper per step, see
  benchmarks/teacher_finetune.py); logits are cast to float32 before the loss,
  validation and test run in float32.
- `init_from` starts from another kws-kd teacher folder of the same shape
  (the curriculum in export/ship_teacher.py chains stages this way); a folder
  of another shape or other labels is refused before anything is written.
- Off a terminal, progress is a plain line every `log_every_s` seconds (no
  redraws), so a background run's log stays readable.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import math
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from export.teacher_data import (
    ClipSource,
    MixSource,
    babble_pool,
    background_noise,
    fixed_batches,
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
    save_teacher,
)
from kws_kd.atomic import atomic_path, atomic_write_text
from kws_kd.audio import SAMPLE_RATE
from kws_kd.data.manifest import Manifest
from kws_kd.errors import KwsKdError
from kws_kd.metrics import mean_average_precision

STATE_FILE = "state/state.pt"
BEST_DIR = "best"
LAST_DIR = "last"
METRICS_CSV = "metrics.csv"
OPTIONS_JSON = "finetune.json"
TEST_JSON = "test_metrics.json"
PRECISIONS = ("float32", "bfloat16")


@dataclass
class FinetuneOptions:
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


@dataclass
class TrainState:
    step: int = 0
    best_metric: float = -math.inf
    best_step: int = -1
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0  # wall time spent in the loop, summed over all launches of this run


# -- data ---------------------------------------------------------------------------

def _load_manifest(path: str) -> Manifest:
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


def make_sources(manifest: Manifest, opts: FinetuneOptions, splits=("train", "validation")) -> dict:
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


# -- metrics ------------------------------------------------------------------------

def loss_fn(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    if multi_label:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
    return torch.nn.functional.cross_entropy(logits, labels)


@torch.no_grad()
def evaluate(model: TeacherClassifier, source, seconds: float, *, batch_size: int = 16,
             limit: int | None = None, seed: int = 0, device="cpu", progress: bool = False,
             predictions: bool = False) -> dict:
    """Accuracy (or mAP) and loss on a deterministic pass over a split at `seconds`, in float32.

    `predictions=True` adds the per-clip argmax (single-label) in pass order."""
    was_training = model.training
    model.eval()
    n = int(round(seconds * SAMPLE_RATE))
    logits, labels = [], []
    total = len(source) if not limit else min(limit, len(source))
    bar = tqdm(total=total, desc=f"eval {seconds:g}s", disable=None if progress else True, leave=False, unit="clip")
    for batch in fixed_batches(source, n, batch_size, limit, seed):
        out = model(torch.from_numpy(batch.audio).to(device))
        logits.append(out.logits.float().cpu())
        labels.append(torch.from_numpy(batch.labels))
        bar.update(len(batch.audio))
    bar.close()
    model.train(was_training)
    lg, lb = torch.cat(logits), torch.cat(labels)
    loss = float(loss_fn(lg, lb, model.multi_label))
    if model.multi_label:
        metric = mean_average_precision(torch.sigmoid(lg).numpy(), lb.numpy())
        return {"metric": metric, "mAP": metric, "loss": loss, "clips": len(lb)}
    acc = float((lg.argmax(1) == lb).float().mean())
    out = {"metric": acc, "accuracy": acc, "loss": loss, "clips": len(lb)}
    if predictions:
        out["predictions"] = lg.argmax(1).tolist()
    return out


# -- model / schedule ---------------------------------------------------------------

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


def _build_model(opts: FinetuneOptions, manifest: Manifest, load_init: bool = True) -> TeacherClassifier:
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


def lr_lambda(warmup: int, total: int):
    """Linear warm-up, then cosine decay to zero at `total` steps."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def _fingerprint(opts: FinetuneOptions) -> dict:
    """Options that must not change across a resume."""
    keys = ("config", "checkpoint", "pooling", "batch_size", "lr", "weight_decay", "warmup_steps", "seed",
            "init_from", "attention_dropout")
    return {k: getattr(opts, k) for k in keys}


_FINGERPRINT_ADDED = {"init_from": None, "attention_dropout": None}  # keys newer than some saved runs


def _fingerprint_diff(saved: dict, now: dict) -> dict:
    return {k: (saved.get(k, _FINGERPRINT_ADDED.get(k)), v) for k, v in now.items()
            if saved.get(k, _FINGERPRINT_ADDED.get(k)) != v}


def set_threads(threads: int | None, interop: int | None) -> None:
    """torch intra-op and inter-op threads. Inter-op can be set once per process, before any parallel work:
    a later, different request is reported (one line) and ignored."""
    if threads:
        torch.set_num_threads(int(threads))
    if interop and torch.get_num_interop_threads() != int(interop):
        try:
            torch.set_num_interop_threads(int(interop))
        except RuntimeError:
            print(f"note: torch inter-op threads stay {torch.get_num_interop_threads()} "
                  f"(they can be set only once per process, before parallel work)", file=sys.stderr)


def autocast(precision: str, device) -> object:
    """The forward pass's precision context: bfloat16 autocast, or nothing for float32."""
    if precision not in PRECISIONS:
        raise KwsKdError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def set_attention_dropout(model: TeacherClassifier, p: float) -> None:
    """Change the attention-probability dropout of every layer (the config is updated too)."""
    model.wav2vec2.config.attention_dropout = float(p)
    for layer in model.wav2vec2.encoder.layers:
        layer.attention.dropout = float(p)


class ProgressLog:
    """Off a terminal: one plain progress line every `every_s` seconds instead of a redrawn bar."""

    def __init__(self, every_s: float, total: int, start_step: int, enabled: bool):
        self.every_s, self.total, self.start_step = every_s, total, start_step
        self.enabled = enabled and every_s > 0
        self.t0 = self.last = time.monotonic()

    def maybe(self, step: int, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.every_s):
            return
        self.last = now
        done = step - self.start_step
        per = (now - self.t0) / done if done > 0 else float("nan")
        eta = per * (self.total - step) if done > 0 else float("nan")
        print(f"finetune step {step}/{self.total} ({100.0 * step / max(1, self.total):.0f}%) {text} | "
              f"{per:.2f} s/step | elapsed {_hms(now - self.t0)}, eta {_hms(eta)}", file=sys.stderr, flush=True)


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _save_state(path: Path, model, optimizer, scheduler, state: TrainState, opts: FinetuneOptions,
                labels: list[str]) -> None:
    payload = {
        "step": state.step,
        "best_metric": state.best_metric,
        "best_step": state.best_step,
        "history": state.history,
        "train_seconds": state.train_seconds,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "labels": labels,
        "fingerprint": _fingerprint(opts),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _write_history(out: Path, history: list[dict]) -> None:
    if not history:
        return
    cols = list(dict.fromkeys(k for row in history for k in row))
    sio = io.StringIO()
    w = csv.DictWriter(sio, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    atomic_write_text(out / METRICS_CSV, sio.getvalue())


class _StopFlag:
    """SIGTERM/SIGINT ask the loop to stop after the current step (state gets saved)."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.stop:  # second signal: give up at once
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


# -- the loop -----------------------------------------------------------------------

def finetune(opts: FinetuneOptions, should_stop: Callable[[int], bool] | None = None) -> dict:
    """Train; returns a summary (best step and metric, steps run, test metrics).

    `should_stop(step)`, called after every step, may ask for a stop as SIGTERM would
    (state saved, resumable); tests use it to interrupt a run.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs

    set_threads(opts.threads, opts.interop_threads)
    if opts.batch_size < 1 or opts.max_steps < 1:
        raise KwsKdError("--batch-size and --max-steps must be positive")
    autocast(opts.precision, "cpu")  # validates the name
    if opts.init_from:
        opts.init_from = str(Path(opts.init_from).expanduser().resolve())
    out = Path(opts.out)
    manifest = _load_manifest(opts.data)
    labels = list(manifest.label_names)
    if opts.clip_seconds is None:
        opts.clip_seconds = (float(manifest.clip_seconds or 1.0),)
    weights = np.asarray(opts.clip_weights or [1.0] * len(opts.clip_seconds), dtype=np.float64)
    if len(weights) != len(opts.clip_seconds) or (weights < 0).any() or weights.sum() <= 0:
        raise KwsKdError("--clip-weights needs one non-negative weight per --clip-seconds value")
    weights = weights / weights.sum()
    val_seconds = opts.val_seconds or (8.0 if opts.fresh_mix else float(manifest.clip_seconds or max(opts.clip_seconds)))

    state_path = out / STATE_FILE
    resume = state_path.is_file()
    saved = None
    if resume:
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        if list(saved["labels"]) != labels:
            raise KwsKdError(f"{state_path}: the run was trained on labels {saved['labels']}, "
                             f"but {opts.data} has {labels}; use another --out")
        diff = _fingerprint_diff(saved["fingerprint"], _fingerprint(opts))
        if diff:
            raise KwsKdError(f"{state_path}: resuming with different options {diff} (saved, now); use another --out")
    else:
        check_init_from(opts, labels, manifest.multi_label)  # before anything is written

    torch.manual_seed(opts.seed)  # the head and a from-scratch backbone are initialised from the seed
    model = _build_model(opts, manifest, load_init=not resume)
    # DDP must tolerate parameters without gradient when LayerDrop skips layers (pretrained XLSR configs).
    ddp = DistributedDataParallelKwargs(find_unused_parameters=model.wav2vec2.config.layerdrop > 0)
    accelerator = Accelerator(kwargs_handlers=[ddp])
    main = accelerator.is_main_process
    model.spec_augment.p = opts.specaugment_p
    if opts.attention_dropout is not None:
        set_attention_dropout(model, opts.attention_dropout)
    model.wav2vec2.feature_extractor._requires_grad = False  # no gradient w.r.t. the raw audio
    lr = opts.learning_rate(manifest.multi_label)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=opts.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(opts.warmup_steps, opts.max_steps))
    state = TrainState()
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        state = TrainState(saved["step"], saved["best_metric"], saved["best_step"], list(saved["history"]),
                           float(saved.get("train_seconds", 0.0)))
        del saved
    model, optimizer = accelerator.prepare(model, optimizer)
    raw_model: TeacherClassifier = accelerator.unwrap_model(model)
    device = accelerator.device

    sources = make_sources(manifest, opts)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        meta = asdict(opts) | {"labels": labels, "val_seconds": val_seconds, "manifest_hash": manifest.content_hash(),
                               "num_processes": accelerator.num_processes}
        atomic_write_text(out / OPTIONS_JSON, json.dumps(meta, indent=2) + "\n")
        if resume:
            print(f"resuming {out} at step {state.step} (best {state.best_metric:.4f} at step {state.best_step})",
                  file=sys.stderr)

    start_time = time.monotonic()
    deadline = start_time + 60.0 * opts.max_minutes if opts.max_minutes else math.inf
    window_loss, window_correct, window_count = 0.0, 0, 0
    stop_reason = "max-steps"
    bar = tqdm(total=opts.max_steps, initial=state.step, desc="finetune", disable=None if (opts.progress and main) else True,
               unit="step", dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 30.0)
    # tqdm(disable=None) hides the bar off a terminal; print plain lines there instead
    log = ProgressLog(opts.log_every_s, opts.max_steps, state.step,
                      enabled=opts.progress and main and bool(getattr(bar, "disable", True)))
    train_seconds_at_start = state.train_seconds
    extra_meta = {"init_from": opts.init_from} if opts.init_from else {}

    def do_eval() -> None:
        nonlocal window_loss, window_correct, window_count
        if not main:
            return
        res = evaluate(raw_model, sources["validation"], val_seconds, batch_size=opts.batch_size,
                       limit=opts.eval_clips, seed=opts.seed, device=device, progress=opts.progress)
        row = {
            "step": state.step,
            "lr": scheduler.get_last_lr()[0],
            "train_loss": window_loss / max(1, window_count),
            "train_acc": window_correct / max(1, window_count) if not raw_model.multi_label else "",
            "val_metric": res["metric"],
            "val_loss": res["loss"],
            "elapsed_s": round(time.monotonic() - start_time, 1),
            "train_s_total": round(train_seconds_at_start + time.monotonic() - start_time, 1),
        }
        window_loss, window_correct, window_count = 0.0, 0, 0
        if res["metric"] > state.best_metric:
            state.best_metric, state.best_step = res["metric"], state.step
            save_teacher(raw_model, out / BEST_DIR, extra={"step": state.step, "val_metric": res["metric"],
                                                           "val_seconds": val_seconds, **extra_meta})
        row["best_metric"] = state.best_metric
        state.history.append(row)
        _write_history(out, state.history)
        # the state follows every validation, so best/ and the resume state never disagree after a kill
        state.train_seconds = train_seconds_at_start + time.monotonic() - start_time
        _save_state(state_path, raw_model, optimizer, scheduler, state, opts, labels)
        saved_at[0] = state.step
        bar.write(f"step {state.step}: val {'mAP' if raw_model.multi_label else 'acc'} {res['metric']:.4f} "
                  f"(loss {res['loss']:.3f}), best {state.best_metric:.4f} at step {state.best_step}")

    model.train()
    last_eval_step = state.step if resume else -1
    saved_at = [state.step if resume else -1]  # the step the resume state was last written at
    with _StopFlag() as flag:
        while state.step < opts.max_steps:
            if flag.stop:
                stop_reason = "signal"
                break
            if time.monotonic() >= deadline:
                stop_reason = "max-minutes"
                break
            step = state.step
            rng = np.random.default_rng([opts.seed, step, accelerator.process_index])
            seconds = float(opts.clip_seconds[int(rng.choice(len(weights), p=weights))])
            batch = sources["train"].sample(rng, opts.batch_size, int(round(seconds * SAMPLE_RATE)))
            torch.manual_seed(opts.seed * 1_000_003 + step * 101 + accelerator.process_index)
            raw_model.spec_augment.generator = torch.Generator().manual_seed(opts.seed * 7919 + step)
            x = torch.from_numpy(batch.audio).to(device)
            y = torch.from_numpy(batch.labels).to(device)
            with autocast(opts.precision, device):
                logits = model(x).logits
            logits = logits.float()  # the loss is always computed in float32
            loss = loss_fn(logits, y, raw_model.multi_label)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if opts.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), opts.grad_clip)
            optimizer.step()
            scheduler.step()
            state.step += 1
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise KwsKdError(f"loss became {loss_value} at step {state.step}; lower --lr")
            window_loss += loss_value * len(y)
            window_count += len(y)
            if not raw_model.multi_label:
                window_correct += int((logits.detach().argmax(1) == y).sum())
            bar.update(1)
            bar.set_postfix(loss=f"{window_loss / window_count:.3f}",
                            acc=f"{window_correct / window_count:.3f}" if not raw_model.multi_label else "-",
                            s=f"{seconds:g}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
            log.maybe(state.step, f"loss {window_loss / window_count:.3f}"
                      + (f" acc {window_correct / window_count:.3f}" if not raw_model.multi_label else "")
                      + f" clip {seconds:g}s lr {scheduler.get_last_lr()[0]:.2e}")
            state.train_seconds = train_seconds_at_start + time.monotonic() - start_time
            if state.step % opts.eval_every == 0:
                do_eval()
                last_eval_step = state.step
            if main and state.step % opts.save_every == 0 and saved_at[0] != state.step:
                _save_state(state_path, raw_model, optimizer, scheduler, state, opts, labels)
                saved_at[0] = state.step
            accelerator.wait_for_everyone()
            if should_stop is not None and should_stop(state.step):
                flag.stop = True
    if last_eval_step != state.step and state.step > 0:
        do_eval()
    state.train_seconds = train_seconds_at_start + time.monotonic() - start_time
    if main:
        _save_state(state_path, raw_model, optimizer, scheduler, state, opts, labels)
        save_teacher(raw_model, out / LAST_DIR, extra={"step": state.step, **extra_meta})
    bar.close()
    summary = {"steps": state.step, "stop_reason": stop_reason, "best_step": state.best_step,
               "best_val_metric": state.best_metric, "val_seconds": val_seconds, "out": str(out),
               "train_seconds": round(state.train_seconds, 1),
               "launch_seconds": round(time.monotonic() - start_time, 1)}
    if main and opts.test and manifest.split("test") and (out / BEST_DIR).is_dir():
        best = load_teacher(out / BEST_DIR).to(device)
        test_src = make_sources(manifest, opts, splits=("test",))["test"]
        res = evaluate(best, test_src, val_seconds, batch_size=opts.batch_size, seed=opts.seed + 1,
                       device=device, progress=opts.progress)
        summary["test"] = {"seconds": val_seconds, **res}
        atomic_write_text(out / TEST_JSON, json.dumps(summary["test"], indent=2) + "\n")
    return summary
