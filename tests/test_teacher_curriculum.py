"""Teacher training levers and the curriculum: --init-from, exact resume, bfloat16, small-cpu-fast,
background progress lines, the smoke curriculum end to end with its ship folder, and the shipped
reference teacher against its metrics.json. Tiny configs and a few steps: seconds each."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from test_finetune import _history, _make_dataset, _opts  # noqa: E402

from export.finetune import _build_model, finetune  # noqa: E402
from export.teacher_model import build_teacher, checkpoint_hash, load_teacher, save_teacher  # noqa: E402
from kws_kd.data.manifest import read_manifest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _make_dataset(tmp_path_factory.mktemp("tones"))


def _fixed_input(seconds: float = 1.0, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    return 0.2 * torch.randn(batch, int(seconds * 16000), generator=g)


def _logits(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x).logits


def _source_teacher(folder: Path, config="tiny", labels=("a", "b", "c"), seed=5) -> Path:
    torch.manual_seed(seed)
    save_teacher(build_teacher(config, list(labels)), folder)
    return folder


# -- --init-from -----------------------------------------------------------------------------------

def _cli(args) -> int:
    from kws_kd.cli.main import main

    return main(["teacher", "finetune", *args, "--threads", "1", "--no-progress", "--no-test", "--max-steps", "1",
                 "--batch-size", "2"])


@pytest.mark.parametrize("case", ["shape", "labels"])
def test_init_from_another_shape_or_labels_exits_with_one_line_and_writes_nothing(data, tmp_path, capsys, case):
    if case == "shape":  # a tiny teacher offered to a small-cpu run
        src, config, expect = _source_teacher(tmp_path / "src"), "small-cpu", "hidden_size 32 vs 128"
    else:  # same shape, other labels
        src, config, expect = _source_teacher(tmp_path / "src", labels=("a", "b", "x")), "tiny", "labels"
    out = tmp_path / "run"
    capsys.readouterr()
    assert _cli(["--data", str(data), "--out", str(out), "--config", config, "--init-from", str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(src) in err and expect in err, err
    assert not out.exists(), "nothing may be written for a refused --init-from"


def test_init_from_the_same_shape_loads_exactly(data, tmp_path):
    src = _source_teacher(tmp_path / "src")
    x = _fixed_input()
    want = _logits(load_teacher(src), x)
    manifest = read_manifest(data)
    opts = _opts(data, tmp_path / "unused", init_from=str(src))
    got = _logits(_build_model(opts, manifest), x)
    assert torch.equal(got, want)
    # through the loop: lr 0 leaves the weights as loaded, so last/ reproduces the source's logits
    summary = finetune(_opts(data, tmp_path / "run", init_from=str(src), lr=0.0, max_steps=1, test=False))
    assert summary["steps"] == 1
    last = load_teacher(tmp_path / "run" / "last")
    assert torch.equal(_logits(last, x), want)
    assert json.loads((tmp_path / "run" / "last" / "teacher.json").read_text())["init_from"] == str(src.resolve())


# -- exact resume --------------------------------------------------------------------------------------

def test_an_interrupted_run_resumes_to_the_same_step_weights_and_best_score(data, tmp_path):
    # cosine over 5 steps with 1 warm-up step: the LR really changes each step, and the stop is mid-schedule
    kw = dict(max_steps=5, warmup_steps=1, test=False)
    full = finetune(_opts(data, tmp_path / "full", **kw))
    part = finetune(_opts(data, tmp_path / "cut", **kw), should_stop=lambda step: step == 2)
    assert part["stop_reason"] == "signal" and part["steps"] == 2
    state = torch.load(tmp_path / "cut" / "state" / "state.pt", weights_only=False)
    assert state["step"] == 2 and state["train_seconds"] > 0
    resumed = finetune(_opts(data, tmp_path / "cut", **kw))
    assert resumed["steps"] == full["steps"] == 5
    assert resumed["best_step"] == full["best_step"]
    assert resumed["best_val_metric"] == full["best_val_metric"]
    assert resumed["train_seconds"] >= part["train_seconds"]
    for a, b in zip(_history(tmp_path / "full"), _history(tmp_path / "cut"), strict=True):
        assert a["step"] == b["step"]
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), rel=1e-5)
        assert float(a["best_metric"]) == float(b["best_metric"])
    for sub in ("last", "best"):  # identical weights (and teacher.json) at the end and for the kept best
        assert checkpoint_hash(tmp_path / "full" / sub) == checkpoint_hash(tmp_path / "cut" / sub), sub


# -- cheaper steps ---------------------------------------------------------------------------------------

def test_bfloat16_autocast_stays_close_to_float32_including_the_positional_conv():
    # small-cpu's positional conv (16 groups, kernel 64) hits a wrong oneDNN bf16 kernel unless it runs in float32
    torch.manual_seed(0)
    model = build_teacher("small-cpu", [f"w{i}" for i in range(12)]).eval()
    x = _fixed_input()
    ref = _logits(model, x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, output_attentions=True)
    assert out.logits.dtype == torch.bfloat16
    rel = float((out.logits.float() - ref).norm() / ref.norm())
    assert rel < 0.05, rel
    assert all(torch.isfinite(a.float()).all() for a in out.attentions)


def test_bfloat16_training_is_finite_and_close_to_float32(data, tmp_path):
    f32 = finetune(_opts(data, tmp_path / "f32", max_steps=2, test=False))
    bf16 = finetune(_opts(data, tmp_path / "bf16", max_steps=2, test=False, precision="bfloat16"))
    assert f32["steps"] == bf16["steps"] == 2
    for a, b in zip(_history(tmp_path / "f32"), _history(tmp_path / "bf16")):
        assert math.isfinite(float(b["train_loss"])) and math.isfinite(float(b["val_loss"]))
        assert float(b["train_loss"]) == pytest.approx(float(a["train_loss"]), rel=0.05)
    with pytest.raises(Exception, match="precision"):
        finetune(_opts(data, tmp_path / "bad", precision="float16"))


def test_small_cpu_fast_keeps_the_frame_rate_and_frame_counts():
    torch.manual_seed(0)
    fast = build_teacher("small-cpu-fast", [f"w{i}" for i in range(12)])
    assert fast.frame_rate == 50.0
    assert fast.num_frames(16000) == 49 and fast.num_frames(128000) == 399
    with torch.no_grad():
        out = fast.eval()(torch.zeros(1, 16000), output_attentions=True)
    assert out.attentions[0].shape[-1] == 49
    assert sum(p.numel() for p in fast.parameters()) == 906_316


def test_progress_is_plain_lines_off_a_terminal(data, tmp_path, capsys):
    finetune(_opts(data, tmp_path / "run", max_steps=2, test=False, progress=True, log_every_s=1e-9))
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("finetune step ")]
    assert len(lines) == 2 and "s/step" in lines[0] and "eta" in lines[0]
    assert "\r" not in err  # no redrawn bars in a log file


# -- the curriculum, end to end on tiny data -----------------------------------------------------------------

REQUIRED = ("model.safetensors", "config.json", "head.safetensors", "teacher.json", "metrics.json",
            "training_metrics.csv", "training_finetune.json")


def test_smoke_curriculum_runs_end_to_end_resumes_and_ships(data, tmp_path, capsys):
    from safetensors import safe_open

    from export.ship_teacher import INCOMPLETE, main, verify

    work, dest = tmp_path / "work", tmp_path / "ship"
    cmd = ["--recipe", "curriculum", "--smoke", "--data", str(data), "--work", str(work), "--dest", str(dest),
           "--no-progress"]
    # a launch that runs out of time stops resumably, without shipping
    assert main(cmd + ["--max-minutes", "1e-6"]) == INCOMPLETE
    assert "run the same command again" in capsys.readouterr().err
    assert not dest.exists()
    # the same command completes it
    assert main(cmd) == 0
    for name in REQUIRED:
        assert (dest / name).is_file(), name
    m = json.loads((dest / "metrics.json").read_text())
    for s in ("1", "2", "4", "8"):
        assert 0.0 <= m[f"test_accuracy_{s}s"] <= 1.0
    for target in ("rollout", "rollout_top2", "last_layer"):
        assert 0.0 <= m["attention_test_8s"][target]["mass"] <= 1.0
    assert m["command"].startswith("python -m export.ship_teacher --recipe curriculum --smoke")
    assert m["wall_seconds_total"] > 0 and m["launches"] == 2
    assert list(m["stages"]) == ["clean_1s", "mix_2s", "mix_4s", "mix_8s"]
    for i, (name, st) in enumerate(m["stages"].items()):
        assert st["done"] and st["steps"] == 2
        assert 0.0 <= st["val_accuracy_8s_mix"] <= 1.0 and 0.0 <= st["rollout_mass_8s"]["rollout"]["mass"] <= 1.0
        if i:  # each stage starts from the previous stage's best
            assert st["init_from"] == str(work / f"{i}_{list(m['stages'])[i - 1]}" / "best")
    # fp16 weights under 10 MB, loaded back as a float32 teacher; the metrics describe these weights
    assert m["weights_dtype"] == "float16" and m["weights_bytes"] <= 10e6
    with safe_open(str(dest / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert next(load_teacher(dest).parameters()).dtype == torch.float32
    assert checkpoint_hash(dest) == m["checkpoint_hash"]
    # metrics.json's subset_check matches a re-evaluation
    res = verify(dest)
    assert res["ok"], res["differences"]
    assert res["measured"]["predictions"] == m["subset_check"]["predictions"]
    # running the finished recipe again trains nothing (stages are skipped) and ships the same weights
    before = (work / "1_clean_1s" / "metrics.csv").read_text()
    assert main(cmd) == 0
    assert (work / "1_clean_1s" / "metrics.csv").read_text() == before
    assert checkpoint_hash(dest) == m["checkpoint_hash"]


# -- the shipped reference teacher ------------------------------------------------------------------------------

SUBSET = 64  # fixed 8 s test mixes re-evaluated (about 5 s on one core)


def test_the_shipped_reference_teacher_matches_its_metrics_on_a_fixed_subset(sc_subset):
    """metrics.json of export/reference_teacher against a re-evaluation of SUBSET fixed test clips.

    That metrics.json predates subset_check, so its figure is the accuracy over all test clips;
    the subset's clips get exactly the mixes they had in that full pass, so the subset accuracy
    is a sample without replacement of it: it must lie within 3.5 standard errors (hypergeometric),
    about +-0.19 here. A ship folder written from now on has a subset_check, which is compared
    exactly (within its stated tolerance)."""
    from export.finetune import evaluate
    from export.ship_teacher import _test_source, verify
    from kws_kd.data.load import load_dataset

    ref = REPO / "export" / "reference_teacher"
    if not (ref / "teacher.json").is_file():
        pytest.skip("no reference teacher shipped in this checkout")
    figures = json.loads((ref / "metrics.json").read_text())
    assert checkpoint_hash(ref) == figures["checkpoint_hash"], "metrics.json describes other weights"
    data = str(sc_subset)
    manifest = load_dataset(data)
    if manifest.content_hash() != figures["manifest_hash"]:
        pytest.skip(f"{data} is not the dataset the reference teacher was measured on")
    torch.set_num_threads(1)
    model = load_teacher(ref)
    if "subset_check" in figures:
        res = verify(ref, data)
        assert res["ok"], res["differences"]
        return
    opts = json.loads((ref / "training_finetune.json").read_text())
    seed = int(opts.get("seed", 0))
    test = _test_source(manifest, data, bool(opts["fresh_mix"]), opts.get("noise"), seed)
    res = evaluate(model, test, 8.0, limit=SUBSET, seed=seed + 1, batch_size=8)
    p, n = figures["test_accuracy_8s"], figures["test_clips"]
    se = math.sqrt(p * (1 - p) / SUBSET * (n - SUBSET) / (n - 1))
    assert res["clips"] == SUBSET
    assert abs(res["accuracy"] - p) <= 3.5 * se, (res["accuracy"], p, se)
    assert np.isfinite(res["loss"])
