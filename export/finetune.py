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
  (the curriculum in export/curriculum.py chains stages this way); a folder
  of another shape or other labels is refused before anything is written.
- Off a terminal, progress is a plain line every `log_every_s` seconds (no
  redraws), so a background run's log stays readable.

The pieces live beside it: options, sources and the starting model in
`export/finetune_setup.py`, the evaluation pass in `export/teacher_eval.py`,
the run folder and resume state in `export/finetune_state.py`, threads,
precision, signals and progress lines in `export/finetune_runtime.py`; their
public names are re-exported here. This file is the schedule and the loop.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from export.finetune_runtime import PRECISIONS, ProgressLog, StopFlag, autocast, set_threads
from export.finetune_setup import (
    FinetuneOptions,
    build_model,
    check_init_from,
    load_manifest,
    make_sources,
    set_attention_dropout,
)
from export.finetune_state import (
    BEST_DIR,
    LAST_DIR,
    METRICS_CSV,
    OPTIONS_JSON,
    STATE_FILE,
    TEST_JSON,
    TrainState,
    fingerprint_diff,
    resume_fingerprint,
    save_state,
    write_history,
)
from export.teacher_eval import evaluate, loss_fn
from export.teacher_model import TeacherClassifier, load_teacher, save_teacher
from kws_kd.atomic import atomic_write_text
from kws_kd.audio import SAMPLE_RATE
from kws_kd.errors import KwsKdError

__all__ = [
    "BEST_DIR", "LAST_DIR", "METRICS_CSV", "OPTIONS_JSON", "PRECISIONS", "STATE_FILE", "TEST_JSON",
    "FinetuneOptions", "ProgressLog", "TrainState", "autocast", "build_model", "check_init_from", "evaluate",
    "finetune", "loss_fn", "lr_lambda", "make_sources", "set_attention_dropout", "set_threads",
]

_build_model = build_model  # the name the tests (and older callers) import


def lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to zero at `total` steps."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


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
    manifest = load_manifest(opts.data)
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
        diff = fingerprint_diff(saved["fingerprint"], resume_fingerprint(opts))
        if diff:
            raise KwsKdError(f"{state_path}: resuming with different options {diff} (saved, now); use another --out")
    else:
        check_init_from(opts, labels, manifest.multi_label)  # before anything is written

    torch.manual_seed(opts.seed)  # the head and a from-scratch backbone are initialised from the seed
    model = build_model(opts, manifest, load_init=not resume)
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
        write_history(out, state.history)
        # the state follows every validation, so best/ and the resume state never disagree after a kill
        state.train_seconds = train_seconds_at_start + time.monotonic() - start_time
        save_state(state_path, raw_model, optimizer, scheduler, state, opts, labels)
        saved_at[0] = state.step
        bar.write(f"step {state.step}: val {'mAP' if raw_model.multi_label else 'acc'} {res['metric']:.4f} "
                  f"(loss {res['loss']:.3f}), best {state.best_metric:.4f} at step {state.best_step}")

    model.train()
    last_eval_step = state.step if resume else -1
    saved_at = [state.step if resume else -1]  # the step the resume state was last written at
    with StopFlag() as flag:
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
                save_state(state_path, raw_model, optimizer, scheduler, state, opts, labels)
                saved_at[0] = state.step
            accelerator.wait_for_everyone()
            if should_stop is not None and should_stop(state.step):
                flag.stop = True
    if last_eval_step != state.step and state.step > 0:
        do_eval()
    state.train_seconds = train_seconds_at_start + time.monotonic() - start_time
    if main:
        save_state(state_path, raw_model, optimizer, scheduler, state, opts, labels)
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
