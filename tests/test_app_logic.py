"""kws_kd.app_logic: the numpy reference of the Android app's logic.

The golden file under android_harness/app/src/test/resources/golden/ is what the
JVM tests check the Java classes against; here the Python side is held to the
same file, and the committed .tflite models are re-run to prove the recorded
outputs are real model outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit
from scipy.special import softmax as scipy_softmax

from kws_kd import app_logic as al
from kws_kd.errors import KwsKdError

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "android_harness" / "app" / "src" / "test" / "resources" / "golden"


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((GOLDEN_DIR / "app_logic_golden.json").read_text())


def _case_ids():
    data = json.loads((GOLDEN_DIR / "app_logic_golden.json").read_text())
    return [c["name"] for c in data["cases"]]


def _replay(case: dict, window: int):
    """A model that checks each input against the golden stream tensor and returns the recorded output."""
    expected_input = np.array(case["input"], dtype=np.int8 if case["input_dtype"] == "int8" else np.float32)
    state = {"i": 0}

    def model(x: np.ndarray) -> np.ndarray:
        hop = case["hops"][state["i"]]
        end = hop["end_sample"]
        np.testing.assert_array_equal(x, expected_input[end - window : end])
        assert x.dtype == expected_input.dtype
        state["i"] += 1
        return np.array(hop["raw_output"])

    return model, state


@pytest.mark.parametrize("name", _case_ids())
def test_golden_case_reproduced(golden, name):
    case = next(c for c in golden["cases"] if c["name"] == name)
    sc = al.load_sidecar(GOLDEN_DIR / case["sidecar"])
    pcm = np.array(golden["pcm"], dtype=np.int16)
    model, state = _replay(case, sc.input_samples)
    stream = al.KeywordStream(sc, model, case["hop_ms"], case["smoothing_windows"], case["threshold"])
    results, pos = [], 0
    for n in golden["chunks"]:
        results += stream.feed(pcm[pos : pos + n])
        pos += n
    assert len(results) == len(case["hops"]) == state["i"]
    for r, h in zip(results, case["hops"]):
        assert r.end_sample == h["end_sample"]
        np.testing.assert_allclose(r.posteriors, h["posteriors"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.smoothed, h["smoothed"], rtol=0, atol=1e-12)
        assert (r.decision.index, r.decision.label, r.decision.detected) == (h["label_index"], h["label"], h["detected"])
        assert r.decision.confidence == pytest.approx(h["confidence"], abs=1e-12)


@pytest.mark.parametrize("name", _case_ids())
def test_golden_outputs_come_from_the_committed_model(golden, name):
    """Run the .tflite with LiteRT on the golden input windows: outputs must equal the recorded ones."""
    from ai_edge_litert.interpreter import Interpreter

    case = next(c for c in golden["cases"] if c["name"] == name)
    sc = al.load_sidecar(GOLDEN_DIR / case["sidecar"])
    interp = Interpreter(model_path=str(GOLDEN_DIR / case["model"]), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert list(inp["shape"]) == list(sc.input.shape) and np.dtype(inp["dtype"]).name == sc.input.dtype
    if sc.input.quantization:
        assert inp["quantization"][0] == pytest.approx(sc.input.quantization.scale, rel=1e-7)
        assert inp["quantization"][1] == sc.input.quantization.zero_point
    stream_input = np.array(case["input"], dtype=inp["dtype"])
    for h in case["hops"]:
        x = stream_input[h["end_sample"] - sc.input_samples : h["end_sample"]]
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]))
        interp.invoke()
        y = interp.get_tensor(out["index"]).reshape(-1)
        if sc.output.dtype == "int8":
            np.testing.assert_array_equal(y, h["raw_output"])
        else:
            np.testing.assert_allclose(y, h["raw_output"], rtol=1e-5, atol=1e-5)


def test_golden_stream_input_is_the_documented_conversion(golden):
    pcm = np.array(golden["pcm"], dtype=np.int64)
    for case in golden["cases"]:
        sc = al.load_sidecar(GOLDEN_DIR / case["sidecar"])
        if case["input_dtype"] == "float32":
            np.testing.assert_array_equal(np.array(case["input"], dtype=np.float64), pcm / 32768.0)
        else:
            q = sc.input.quantization
            v = pcm / 32768.0 / q.scale
            expect = np.clip(np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5)) + q.zero_point, -128, 127)
            np.testing.assert_array_equal(case["input"], expect)
    assert pcm.min() == -32768 and pcm.max() == 32767  # both int16 extremes are in the stream


def test_chunking_does_not_change_results(golden):
    case = golden["cases"][0]
    sc = al.load_sidecar(GOLDEN_DIR / case["sidecar"])
    pcm = np.array(golden["pcm"], dtype=np.int16)
    outputs = {h["end_sample"]: np.array(h["raw_output"]) for h in case["hops"]}
    ends = []
    for chunking in ([len(pcm)], [1] * 2000 + [len(pcm) - 2000], [400] * 12):
        stream = al.KeywordStream(sc, lambda x: outputs[stream.ring.total_written], case["hop_ms"], 3, 0.4)
        got, pos = [], 0
        for n in chunking:
            got += stream.feed(pcm[pos : pos + n])
            pos += n
        ends.append([r.end_sample for r in got])
        np.testing.assert_allclose([r.smoothed for r in got], [h["smoothed"] for h in case["hops"]], atol=1e-12)
    assert ends[0] == ends[1] == ends[2] == [1600 + 400 * k for k in range(9)]


# ---------------------------------------------------------------------------
# unit behaviour against independent computations


def test_ring_buffer_matches_tail_of_stream():
    rng = np.random.default_rng(0)
    stream = rng.integers(-32768, 32768, 5000).astype(np.int16)
    ring = al.RingBuffer(700)
    pos = 0
    for n in [3, 700, 1, 1500, 699, 97, 2000]:
        ring.write(stream[pos : pos + n])
        pos += n
        tail = stream[max(0, pos - 700) : pos]
        expect = np.concatenate([np.zeros(700 - len(tail), np.int16), tail])
        np.testing.assert_array_equal(ring.snapshot(), expect)
    assert ring.total_written == pos == 5000


@pytest.mark.parametrize("hop_ms,rate,expect", [(250, 16000, 4000), (25, 16000, 400), (1, 44100, 44), (3, 44100, 132)])
def test_hop_samples(hop_ms, rate, expect):
    assert al.hop_samples(hop_ms, rate) == expect


def test_hop_samples_rejects_nonpositive():
    with pytest.raises(KwsKdError, match="hop"):
        al.hop_samples(0, 16000)


def test_float_input_is_pcm_over_32768():
    pcm = np.array([-32768, -1, 0, 1, 16384, 32767], dtype=np.int16)
    x = al.prepare_input(pcm, al.TensorSpec("a", (1, 6), "float32", None))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, [-1.0, -1 / 32768, 0.0, 1 / 32768, 0.5, 32767 / 32768])


def test_int8_input_rounds_half_away_from_zero_and_clamps():
    # scale 2**-7: pcm / 32768 / scale = pcm / 256, so odd multiples of 128 are exact ties.
    pcm = np.array([128, -128, 384, -384, 127, -129, 0, 32767, -32768], dtype=np.int16)
    q = al.quantize_pcm(pcm, al.Quantization(2.0**-7, 3))
    # 0.5->1, -0.5->-1, 1.5->2, -1.5->-2, 0.496->0, -0.504->-1, 0, 127.996->128+3 clamps to 127, -128+3
    np.testing.assert_array_equal(q, [4, 2, 5, 1, 3, 2, 3, 127, -125])
    assert q.dtype == np.int8
    q = al.quantize_pcm(pcm, al.Quantization(2.0**-7, -3))
    np.testing.assert_array_equal(q[-2:], [125, -128])  # -128-3 clamps to -128


def test_int8_output_dequantization():
    spec = al.TensorSpec("o", (1, 3), "int8", al.Quantization(0.25, -4))
    np.testing.assert_array_equal(al.dequantize_output(np.array([-4, 0, 127], np.int8), spec), [0.0, 1.0, 32.75])


def test_activations_match_scipy():
    v = np.array([3.0, -1.0, 0.5, 10.0, -20.0])
    np.testing.assert_allclose(al.softmax(v), scipy_softmax(v), rtol=1e-12)
    np.testing.assert_allclose(al.sigmoid(v), expit(v), rtol=1e-12)
    assert al.softmax(np.array([1000.0, 1000.0]))[0] == 0.5  # no overflow


def test_smoother_is_running_mean_of_last_n():
    rng = np.random.default_rng(1)
    vecs = rng.random((7, 4))
    sm = al.PosteriorSmoother(3)
    for i, v in enumerate(vecs):
        np.testing.assert_allclose(sm.push(v), vecs[max(0, i - 2) : i + 1].mean(axis=0), rtol=1e-12)


def test_decode_first_max_threshold_and_fillers():
    labels = ["_silence_", "yes", "no"]
    assert al.decode(np.array([0.2, 0.4, 0.4]), labels, 0.4) == al.Decision(1, "yes", 0.4, True)
    assert al.decode(np.array([0.2, 0.39, 0.41]), labels, 0.5).detected is False
    assert al.decode(np.array([0.9, 0.05, 0.05]), labels, 0.5) == al.Decision(0, "_silence_", 0.9, False)


# ---------------------------------------------------------------------------
# sidecar parsing


def _sidecar(**over) -> dict:
    base = json.loads((GOLDEN_DIR / "tiny_int8.json").read_text())
    base.update(over)
    return base


def test_sidecar_fields_parsed():
    sc = al.load_sidecar(GOLDEN_DIR / "tiny_int8.json")
    assert sc.labels == ("_silence_", "_unknown_", "yes", "no")
    assert sc.input.dtype == "int8" and sc.input.shape == (1, 1600) and sc.input_samples == 1600
    assert sc.output.quantization.zero_point == json.loads((GOLDEN_DIR / "tiny_int8.json").read_text())["output"]["quantization"]["zero_point"]
    assert al.sidecar_path_for("a/b/m.tflite") == Path("a/b/m.json")


@pytest.mark.parametrize(
    "change,message",
    [
        ({"format": "other"}, "'format'"),
        ({"version": 2}, "version 2"),
        ({"streaming": True}, "streaming"),
        ({"labels": []}, "labels"),
        ({"labels": ["a", "b"]}, "does not match 2 labels"),
        ({"input_samples": 16000}, "input_samples=16000"),
        ({"sample_rate": "16k"}, "sample_rate"),
    ],
)
def test_sidecar_errors_name_file_and_problem(tmp_path, change, message):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_sidecar(**change)))
    with pytest.raises(KwsKdError) as exc:
        al.load_sidecar(path)
    assert str(path) in str(exc.value) and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_sidecar_int8_needs_quantization(tmp_path):
    obj = _sidecar()
    obj["input"]["quantization"] = None
    path = tmp_path / "q.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(KwsKdError, match="needs 'quantization'"):
        al.load_sidecar(path)


def test_sidecar_unreadable_and_bad_json(tmp_path):
    with pytest.raises(KwsKdError, match="cannot read sidecar"):
        al.load_sidecar(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(KwsKdError, match="not valid JSON"):
        al.load_sidecar(bad)


# ---------------------------------------------------------------------------
# agreement with the export side (kws_kd.tflite), which writes the real sidecars


@pytest.mark.parametrize("stem", ["tiny_float", "tiny_int8"])
def test_sidecar_written_by_kws_kd_export_parses_the_same(tmp_path, stem):
    from kws_kd.tflite.sidecar import build_sidecar, write_sidecar

    model = tmp_path / f"{stem}.tflite"
    model.write_bytes((GOLDEN_DIR / f"{stem}.tflite").read_bytes())
    labels = ["_silence_", "_unknown_", "yes", "no"]
    obj = build_sidecar(model, model="golden_tiny", quantize="int8" if "int8" in stem else "float32", labels=labels,
                        multi_label=False, sample_rate=16000, front_end={}, source_run=None, test_metrics=None)  # fmt: skip
    write_sidecar(tmp_path / f"{stem}.json", obj)
    theirs = al.load_sidecar(al.sidecar_path_for(model))
    ours = al.load_sidecar(GOLDEN_DIR / f"{stem}.json")
    assert theirs.labels == ours.labels and theirs.input_samples == ours.input_samples == 1600
    assert (theirs.input.dtype, theirs.input.shape, theirs.input.quantization) == (ours.input.dtype, ours.input.shape, ours.input.quantization)
    assert (theirs.output.dtype, theirs.output.shape, theirs.output.quantization, theirs.output.kind) == (
        ours.output.dtype, ours.output.shape, ours.output.quantization, ours.output.kind)


@pytest.mark.parametrize("name", ["float_softmax", "int8_softmax"])
def test_posteriors_agree_with_the_host_evaluator(golden, name):
    """kws_kd.tflite.runner (used by kws-kd eval on .tflite files) on the same windows gives the same posteriors."""
    from scipy.special import softmax as ref_softmax

    from kws_kd.tflite.runner import TFLiteClassifier

    case = next(c for c in golden["cases"] if c["name"] == name)
    clf = TFLiteClassifier(GOLDEN_DIR / case["model"], num_threads=1)
    pcm = np.array(golden["pcm"], dtype=np.int16)
    for h in case["hops"]:
        window = pcm[h["end_sample"] - clf.input_samples : h["end_sample"]].astype(np.float32) / 32768.0
        np.testing.assert_allclose(ref_softmax(clf.logits(window).astype(np.float64)), h["posteriors"], atol=1e-5)
