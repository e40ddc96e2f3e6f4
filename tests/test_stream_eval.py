"""Keyword detection on long streams (kws_kd.stream_eval): metrics by hand, a stub model, real files, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kws_kd import app_logic as al
from kws_kd.cli.main import main
from kws_kd.data.stream import StreamEvent, build_stream, read_stream
from kws_kd.errors import KwsKdError
from kws_kd.stream_eval import evaluate_stream
from kws_kd.stream_metrics import ScoredFile, match, operating_point, score_threshold, sweep
from kws_kd.stream_scorers import float_sidecar, keyword_stream_scorer, smoothing_windows

from _stream_fixtures import LABELS, SR, make_word_dataset, write_stream

GOLDEN = Path(__file__).resolve().parents[1] / "android_harness" / "app" / "src" / "test" / "resources" / "golden"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- app_logic rules the evaluation uses


def test_decode_batch_is_decode_row_by_row():
    rng = np.random.default_rng(0)
    s = rng.dirichlet(np.ones(4), size=50)
    s[3] = [0.1, 0.45, 0.45, 0.0]  # ties: first maximum
    index, conf, detected = al.decode_batch(s, LABELS, 0.4)
    for row, i, c, d in zip(s, index, conf, detected):
        assert al.decode(row, LABELS, 0.4) == al.Decision(int(i), LABELS[i], float(c), bool(d))
    assert index[3] == 1 and not detected[3]  # _unknown_ is a filler


def test_detection_events_fire_on_onsets_with_suppression():
    t = np.arange(12) * 0.1
    idx = np.array([2, 2, 2, 2, 3, 3, 2, 2, 2, 2, 2, 2])
    det = np.array([0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1], bool)
    # onsets at 0.1 (yes), 0.4 (no: 0.3 s later, suppressed), 1.0 (yes: 0.9 s after the last announcement)
    assert al.detection_events(t, idx, det, 0.5).tolist() == [1, 10]
    assert al.detection_events(t, idx, det, 0.0).tolist() == [1, 4, 10]
    # a label switch while detected is an onset too
    assert al.detection_events(t[:3], [2, 3, 3], [True, True, True], 0.0).tolist() == [0, 1]


# ---------------------------------------------------------------- metrics against a hand count


def _hand_case():
    """Two files, 90 s: 4 keywords, 1 found; 5 false alarms, one of each kind plus a second in noise."""
    ev = [StreamEvent("a.wav", 10, 11, "yes"), StreamEvent("a.wav", 20, 21, "no"), StreamEvent("a.wav", 30, 31, "yes"),
          StreamEvent("a.wav", 40, 41, "_unknown_"), StreamEvent("b.wav", 5, 6, "no")]

    def file(name, seconds, bumps):
        t = np.round(np.arange(1, int(seconds * 10) + 1) * 0.1, 6)
        s = np.tile([0.9, 0.04, 0.03, 0.03], (len(t), 1))
        for start, end, label, level in bumps:
            on = (t >= start) & (t < end)
            s[on] = (1 - level) / 3
            s[on, LABELS.index(label)] = level
        return ScoredFile(name, seconds, t, s)

    files = [file("a.wav", 60, [(10.5, 11.0, "yes", 0.95),  # found
                                (11.8, 12.0, "yes", 0.8),  # duplicate of the found yes
                                (30.2, 30.5, "no", 0.8),  # wrong label inside yes@30 (which is missed)
                                (40.5, 40.7, "yes", 0.8),  # on an unknown word
                                (50.0, 50.3, "yes", 0.8)]),  # noise
             file("b.wav", 30, [(15.0, 15.2, "yes", 0.8)])]  # noise; no@5 missed
    return files, ev


def test_frr_and_fa_per_hour_by_hand():
    files, ev = _hand_case()
    p = score_threshold(files, ev, LABELS, 0.7, suppression_s=0.5, tolerance_s=1.5)
    assert (p["keywords"], p["misses"], p["false_alarms"]) == (4, 3, 5)
    assert p["frr"] == pytest.approx(0.75) and p["fa_per_hour"] == pytest.approx(5 / (90 / 3600))
    assert p["fa_kinds"] == {"duplicate": 1, "wrong_label": 1, "unknown": 1, "noise": 2}
    assert p["per_keyword"]["yes"]["keywords"] == 2 and p["per_keyword"]["yes"]["misses"] == 1
    assert p["per_keyword"]["yes"]["false_alarms"] == 4 and p["per_keyword"]["no"]["false_alarms"] == 1
    assert p["per_keyword"]["no"]["frr"] == 1.0
    hi = score_threshold(files, ev, LABELS, 0.9, suppression_s=0.5, tolerance_s=1.5)
    assert (hi["misses"], hi["false_alarms"]) == (3, 0)


def test_sweep_and_operating_points():
    files, ev = _hand_case()
    points = sweep(files, ev, LABELS, [0.5, 0.7, 0.9, 0.99])
    assert [p["threshold"] for p in points] == [0.5, 0.7, 0.9, 0.99]
    assert [p["false_alarms"] for p in points] == [5, 5, 0, 0] and [p["misses"] for p in points] == [3, 3, 3, 4]
    op = operating_point(points, 1.0)
    assert op["threshold"] == 0.9 and op["frr"] == 0.75  # best FRR at <= 1 FA/h: 0.9 beats 0.99
    assert operating_point(points[:2], 1.0) is None


def test_match_tolerance_edges():
    ev = [StreamEvent("f", 10.0, 11.0, "yes")]
    assert match([8.5], ["yes"], ev, 1.5).found.tolist() == [True]  # exactly start - tolerance
    assert match([12.5], ["yes"], ev, 1.5).found.tolist() == [True]
    out = match([12.51], ["yes"], ev, 1.5)
    assert out.found.tolist() == [False] and out.false_alarms == [(12.51, "yes", "noise")]


# ---------------------------------------------------------------- a stub model on clean tones


STUB_FREQS = {1000: "yes", 2000: "no", 3000: "_unknown_", 5000: "yes", 6000: "no"}  # 5000/6000 Hz: fire on purpose


def _stub_model(x: np.ndarray) -> np.ndarray:
    """Logits for a 0.1 s float window: a large logit for the label of the loudest known tone, else silence."""
    mag = np.abs(np.fft.rfft(x.astype(np.float64)))  # 10 Hz bins
    logits = np.array([2.0, 0.0, 0.0, 0.0])
    f, label = max(STUB_FREQS.items(), key=lambda kv: mag[kv[0] // 10])
    if mag[f // 10] > 50:
        logits[LABELS.index(label)] = 12.0
    return logits


def _tone_stream(root: Path) -> Path:
    """40 s of quiet noise: 3 yes, 3 no, 1 unknown word; traps: 5 kHz twice in noise, 6 kHz inside a yes window."""
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.005, 40 * SR)

    def put(freq, start, seconds=0.6):
        t = np.arange(int(seconds * SR)) / SR
        x[int(start * SR) : int(start * SR) + len(t)] += 0.4 * np.sin(2 * np.pi * freq * t)

    rows = []
    for start, label in [(3, "yes"), (8, "no"), (13, "yes"), (18, "no"), (23, "yes"), (28, "no"), (33, "_unknown_")]:
        put({"yes": 1000, "no": 2000, "_unknown_": 3000}[label], start)
        rows.append(("tones.wav", start, round(start + 0.6, 3), label))
    put(5000, 36.0)
    put(5000, 38.5)
    put(6000, 4.4)  # 'no' announced inside the yes@3 window: a wrong-label alarm
    return write_stream(root, {"tones.wav": x}, rows)


def test_stub_model_finds_every_keyword_and_only_the_planted_alarms(tmp_path):
    stream_dir = _tone_stream(tmp_path / "tones")
    side = float_sidecar(LABELS, False, SR, 1600, "stub")
    scorer = keyword_stream_scorer("stub", "stub", tmp_path / "stub", side, _stub_model, 100, 500)
    assert scorer.windows == smoothing_windows(500, 100) == 5
    report = evaluate_stream(stream_dir, [scorer], out_dir=tmp_path / "out", thresholds=[0.5, 0.7], progress=False)
    m = report["models"][0]
    at = {p["threshold"]: p for p in m["sweep"]}
    for p in at.values():
        assert (p["keywords"], p["misses"], p["false_alarms"]) == (6, 0, 3)
        assert p["fa_kinds"] == {"duplicate": 0, "wrong_label": 1, "unknown": 0, "noise": 2}
        assert p["fa_per_hour"] == pytest.approx(3 / (40 / 3600))
    assert m["hops"] == 1 + (40 * SR - 1600) // 1600 and m["real_time_factor"] > 0
    assert m["operating_points"]["1"] is None  # 270 FA/h: no threshold reaches 1 FA/h
    saved = json.loads((tmp_path / "out" / "stream_eval_tones.json").read_text())
    assert saved["models"][0]["at_reference_threshold"]["per_keyword"]["yes"]["false_alarms"] == 2
    assert (tmp_path / "out" / "stream_det_tones.png").read_bytes()[:8] == PNG_MAGIC
    sweep_csv = (tmp_path / "out" / "stream_eval_tones.csv").read_text().splitlines()
    assert sweep_csv[0].startswith("model,threshold,frr,fa_per_hour") and len(sweep_csv) == 3


# ---------------------------------------------------------------- real files through the CLI


@pytest.fixture(scope="module")
def built_stream(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("se")
    m = make_word_dataset(root / "data")
    build_stream(m, root / "stream", total_minutes=0.4, minutes_per_file=0.2, gap_seconds=(1.0, 2.0), seed=1,
                 progress=False)
    return root / "stream"


def _golden_copy(dest: Path, *stems: str) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for stem in stems:
        for ext in (".tflite", ".json"):
            shutil.copy(GOLDEN / f"{stem}{ext}", dest / f"{stem}{ext}")
        out.append(dest / f"{stem}.tflite")
    return out


def test_cli_whole_clip_files_float_and_int8(built_stream, tmp_path, capsys):
    f32, i8 = _golden_copy(tmp_path / "models", "tiny_float", "tiny_int8")
    assert main(["eval", "--stream", str(built_stream), "--tflite", str(f32), "--tflite", str(i8)]) == 0
    out = capsys.readouterr().out
    assert "tiny_float (tflite, hop 100 ms, mean of 5 hops): real-time factor" in out
    report = json.loads((tmp_path / "models" / "stream_eval_stream.json").read_text())  # default: beside the first model
    assert [m["name"] for m in report["models"]] == ["tiny_float", "tiny_int8"]
    assert report["audio_seconds"] == 24.0 and report["keywords"] == len(
        [e for e in read_stream(built_stream).events if e.label in ("yes", "no")])
    for m in report["models"]:
        assert m["hops"] == 2 * (1 + (12 * SR - 1600) // 1600) and m["real_time_factor"] > 0
        assert all(0 <= p["frr"] <= 1 for p in m["sweep"])
    assert (tmp_path / "models" / "stream_det_stream.png").read_bytes()[:8] == PNG_MAGIC
    kw = (tmp_path / "models" / "stream_eval_stream_keywords.csv").read_text().splitlines()
    assert kw[0] == "model,operating_point,threshold,label,keywords,misses,frr,false_alarms,fa_per_hour"


def test_whole_clip_scorer_is_the_app_keyword_stream(built_stream):
    """The .tflite path gives exactly KeywordStream's smoothed posteriors (the app mirror), window by window."""
    import soundfile as sf

    from kws_kd.stream_scorers import tflite_scorer
    from kws_kd.tflite.runner import TFLiteClassifier

    scorer = tflite_scorer(GOLDEN / "tiny_int8.tflite", hop_ms=250, average_window_ms=750)
    pcm = sf.read(str(read_stream(built_stream).files[0].path), dtype="int16")[0][: 3 * SR]
    ends, smoothed = scorer.score(pcm)
    clf = TFLiteClassifier(GOLDEN / "tiny_int8.tflite")
    side = al.load_sidecar(GOLDEN / "tiny_int8.json")
    smoother = al.PosteriorSmoother(3)
    for end, got in zip(ends, smoothed):
        clf.interpreter.set_tensor(clf.input["index"], al.prepare_input(pcm[end - 1600 : end], side.input).reshape(1, -1))
        clf.interpreter.invoke()
        ref = smoother.push(al.posteriors(clf.interpreter.get_tensor(clf.output["index"]), side))
        np.testing.assert_array_equal(got, ref)
    assert ends.tolist() == list(range(1600, 3 * SR + 1, 4000))


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    """A random-weight LSTM-P run folder (no training) and its float32 streaming export with sidecar."""
    keras = pytest.importorskip("keras")
    from kws_kd.run import RunConfig, write_config
    from kws_kd.students.registry import build_student, make_config
    from kws_kd.tflite.export import export_run

    root = tmp_path_factory.mktemp("lstm")
    config = {"units": 24, "projection": 16}
    keras.utils.set_random_seed(5)
    model = build_student("lstm_p", len(LABELS), SR, make_config("lstm_p", config), attention=True)
    write_config(root / "run", RunConfig(model="lstm_p", labels=list(LABELS), clip_seconds=1.0, student_config=config))
    model.save_weights(str(root / "run" / "best.weights.h5"))
    export_run(root / "run", root / "lstm_stream.tflite", quantize="float32", streaming=True, log=lambda *a: None)
    return root


def test_cli_streaming_file_and_keras_run_on_one_plot(built_stream, lstm_run, tmp_path, capsys):
    out_dir = tmp_path / "o"
    args = ["eval", "--stream", str(built_stream), "--tflite", str(lstm_run / "lstm_stream.tflite"),
            "--run", str(lstm_run / "run"), "--out-dir", str(out_dir)]
    assert main(args) == 0
    capsys.readouterr()
    report = json.loads((out_dir / "stream_eval_stream.json").read_text())
    stream_m, keras_m = report["models"]
    assert (stream_m["kind"], stream_m["hop_ms"], stream_m["smoothing_windows"]) == ("tflite-streaming", 20.0, 25)
    assert stream_m["hops"] == 2 * (12 * SR // 320)  # every 20 ms hop of both files, state carried
    assert (keras_m["kind"], keras_m["hop_ms"], keras_m["name"]) == ("keras", 100.0, "run")
    assert keras_m["hops"] == 2 * (1 + (12 * SR - SR) // 1600)
    assert (out_dir / "stream_det_stream.png").is_file()


def test_keras_windows_match_keyword_stream(built_stream):
    """Batched sliding windows of a Keras model == KeywordStream fed the same model one window at a time."""
    keras = pytest.importorskip("keras")
    import soundfile as sf

    from kws_kd.stream_scorers import model_scorer

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((1600,)), keras.layers.Dense(4)])
    side = float_sidecar(LABELS, False, SR, 1600)
    pcm = sf.read(str(read_stream(built_stream).files[0].path), dtype="int16")[0][: 2 * SR]
    ends, smoothed = model_scorer("k", Path("k"), model, side, hop_ms=100, batch_size=7).score(pcm)
    stream = al.KeywordStream(side, lambda x: np.asarray(model(x[None], training=False))[0], 100, 5)
    ref = stream.feed(pcm)
    assert ends.tolist() == [r.end_sample for r in ref]
    np.testing.assert_allclose(smoothed, np.array([r.smoothed for r in ref]), atol=1e-6)


# ---------------------------------------------------------------- bad input: one line, nothing written


def _fails(args: list[str], capsys, out_dir: Path, *, names: str) -> str:
    assert main(args + ["--out-dir", str(out_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and names in err, err
    assert not out_dir.exists()
    return err


@pytest.fixture
def model_file(tmp_path) -> Path:
    return _golden_copy(tmp_path / "m", "tiny_float")[0]


def test_bad_stream_without_labels_csv(built_stream, model_file, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(built_stream, bad)
    (bad / "labels.csv").unlink()
    err = _fails(["eval", "--stream", str(bad), "--tflite", str(model_file)], capsys, tmp_path / "o",
                 names=str(bad / "labels.csv"))
    assert "missing" in err


def test_bad_label_time_outside_the_audio(model_file, tmp_path, capsys):
    bad = write_stream(tmp_path / "bad", {"a.wav": np.zeros(5 * SR)}, [("a.wav", 1.0, 2.0, "yes"), ("a.wav", 4.5, 5.5, "no")])
    err = _fails(["eval", "--stream", str(bad), "--tflite", str(model_file)], capsys, tmp_path / "o",
                 names=str(bad / "labels.csv"))
    assert "line 3" in err and "outside a.wav" in err


def test_bad_sample_rate(model_file, tmp_path, capsys):
    bad = write_stream(tmp_path / "bad", {"a.wav": np.zeros(8000 * 3)}, [("a.wav", 1.0, 2.0, "yes")], rate=8000)
    err = _fails(["eval", "--stream", str(bad), "--tflite", str(model_file)], capsys, tmp_path / "o",
                 names=str(bad / "a.wav"))
    assert "8000 Hz" in err


def test_bad_word_the_model_does_not_know(model_file, tmp_path, capsys):
    bad = write_stream(tmp_path / "bad", {"a.wav": np.zeros(5 * SR)}, [("a.wav", 1.0, 2.0, "yes"), ("a.wav", 3, 4, "maybe")])
    err = _fails(["eval", "--stream", str(bad), "--tflite", str(model_file)], capsys, tmp_path / "o",
                 names=str(bad / "labels.csv"))
    assert "'maybe' is not a label of" in err and str(model_file) in err


def test_bad_tflite_without_sidecar(built_stream, model_file, tmp_path, capsys):
    model_file.with_suffix(".json").unlink()
    err = _fails(["eval", "--stream", str(built_stream), "--tflite", str(model_file)], capsys, tmp_path / "o",
                 names=str(model_file.with_suffix(".json")))
    assert "missing" in err


def test_stream_needs_a_model_and_clip_eval_one_run(built_stream, tmp_path, capsys):
    assert main(["eval", "--stream", str(built_stream)]) == 2
    assert "at least one model" in capsys.readouterr().err
    assert main(["eval", "--run", "a", "--run", "b"]) == 2
    assert "several models need --stream" in capsys.readouterr().err


def test_filler_labels_need_not_be_model_labels(tmp_path):
    """`_unknown_` (any filler) need not be a model label: such clips only ever produce false alarms."""
    s = write_stream(tmp_path / "s", {"a.wav": np.zeros(3 * SR)}, [("a.wav", 1.0, 2.0, "_noise_")])
    side = float_sidecar(["_silence_", "yes"], False, SR, 1600)
    scorer = keyword_stream_scorer("z", "stub", tmp_path / "z", side, lambda x: np.array([5.0, 0.0]), 100, 500)
    report = evaluate_stream(s, [scorer], out_dir=tmp_path / "o", thresholds=[0.5], progress=False)
    assert report["keywords"] == 0 and report["models"][0]["sweep"][0]["false_alarms"] == 0
    with pytest.raises(KwsKdError, match="at least one model"):
        evaluate_stream(s, [], out_dir=tmp_path / "o2")
