"""`kws-kd export --tflite` end to end on a run folder with a TRAINED student, plus `evaluate_tflite`.

A small TC-ResNet is trained for a few seconds on a generated 4-tone dataset
(each clip: a tone burst of the class frequency at a random offset over a
noise floor), saved as a run folder the way `kws_kd/run.py` defines it, and
exported. int8 is judged against float32 with LiteRT's own interpreter, and
the sidecar against the file itself.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kws_kd.audio import write_wav  # noqa: E402
from kws_kd.cli.main import main  # noqa: E402
from kws_kd.data.manifest import ClipRecord, Manifest, write_manifest  # noqa: E402

SR = 16000
LABELS = ["f400", "f1000", "f2000", "f3500"]
FREQS = [400.0, 1000.0, 2000.0, 3500.0]
CONFIG = {"channels": [12, 12, 16]}
SIDECAR_KEYS = {
    "format", "version", "model", "quantize", "streaming", "labels", "multi_label", "sample_rate",
    "clip_seconds", "input_samples", "input", "output", "front_end", "source_run", "test_metrics", "ops",
    "size_bytes",
}  # fmt: skip


def _make_dataset(root, per_split=(40, 6, 30), seed=0) -> Manifest:
    rng = np.random.default_rng(seed)
    clips = []
    for split, count in zip(("train", "validation", "test"), per_split):
        for k in range(count):
            for lab, f in zip(LABELS, FREQS):
                audio = rng.normal(0, 0.02, SR)
                n = int(0.3 * SR)
                s0 = int(rng.integers(0, SR - n))
                t = np.arange(n) / SR
                audio[s0 : s0 + n] += rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * f * rng.uniform(0.97, 1.03) * t)
                path = root / "wav" / split / f"{lab}_{k}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_wav(path, np.clip(audio, -1, 1).astype(np.float32))
                clips.append(ClipRecord(f"{split}/{lab}_{k}", split, (lab,), str(path), s0 / SR, (s0 + n) / SR))
    manifest = Manifest(root=str(root), label_names=list(LABELS), clips=clips, clip_seconds=1.0)
    write_manifest(manifest, root)
    return manifest


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run folder (config.json, labels.txt, best.weights.h5, test_metrics.json) of a trained TC-ResNet."""
    from kws_kd.run import RunConfig, write_config, write_json
    from kws_kd.students.attention import strip
    from kws_kd.students.registry import build_student, make_config
    from kws_kd.tflite.clips import load_clips

    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    manifest = _make_dataset(data)
    x, y, _ = load_clips(manifest, "train", SR)
    xt, yt, _ = load_clips(manifest, "test", SR)
    keras.utils.set_random_seed(0)
    model = build_student("tc_resnet", len(LABELS), SR, make_config("tc_resnet", CONFIG), attention=True)
    infer = strip(model)  # shares the training model's variables
    infer.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    infer.fit(x, y, batch_size=32, epochs=12, verbose=0, shuffle=True)
    acc = float(np.mean(np.argmax(infer.predict(xt, verbose=0), -1) == yt))
    run = root / "run"
    write_config(run, RunConfig(model="tc_resnet", labels=list(LABELS), student_config=CONFIG, data=str(data)))
    model.save_weights(str(run / "best.weights.h5"))
    write_json(run / "test_metrics.json", {"accuracy": acc})
    return {"run": run, "data": data, "manifest": manifest, "keras_acc": acc, "xt": xt, "yt": yt, "root": root}


@pytest.fixture(scope="module")
def exported(trained_run):
    """float32, int8 and int8 with int8 I/O exports through the CLI."""
    out = {}
    for mode, extra in (("float32", []), ("int8", []), ("int8io", ["--int8-io"])):
        path = trained_run["root"] / f"model_{mode}.tflite"
        quant = "int8" if mode == "int8io" else mode
        rc = main(["export", "--tflite", "--run", str(trained_run["run"]), "--quantize", quant, "--out", str(path),
                   "--calibration-clips", "100"] + extra)  # fmt: skip
        assert rc == 0
        out[mode] = path
    return out


def _raw_logits(path, clips):
    """Logits with LiteRT's Interpreter directly (independent of kws_kd's runner)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    res = []
    for c in clips:
        x = c[None, :]
        if i["dtype"] == np.int8:
            s, z = i["quantization"]
            x = np.clip(np.round(x / s) + z, -128, 127)
        it.set_tensor(i["index"], x.astype(i["dtype"]))
        it.invoke()
        y = it.get_tensor(o["index"]).astype(np.float32)[0]
        if o["dtype"] == np.int8:
            s, z = o["quantization"]
            y = (y - z) * s
        res.append(y)
    return np.array(res)


@pytest.mark.slow
def test_student_is_really_trained(trained_run):
    assert trained_run["keras_acc"] >= 0.9  # chance is 0.25


@pytest.mark.slow
def test_int8_agrees_with_float32_on_held_out_clips(trained_run, exported):
    xt, yt = trained_run["xt"], trained_run["yt"]
    f32 = _raw_logits(exported["float32"], xt)
    q8 = _raw_logits(exported["int8"], xt)
    agreement = np.mean(np.argmax(q8, -1) == np.argmax(f32, -1))
    assert agreement >= 0.98, agreement
    acc_f, acc_q = np.mean(np.argmax(f32, -1) == yt), np.mean(np.argmax(q8, -1) == yt)
    assert acc_q >= acc_f - 0.02
    # (This tiny student is mostly float front-end constants, so only "smaller" is asserted;
    # the paper-size ratios are in docs/latency.md.)
    assert exported["int8"].stat().st_size < exported["float32"].stat().st_size


@pytest.mark.slow
def test_sidecar_describes_the_file(trained_run, exported):
    from kws_kd.tflite.runner import op_counts

    for mode, path in exported.items():
        side = json.loads(path.with_suffix(".json").read_text())
        assert set(side) == SIDECAR_KEYS
        assert side["format"] == "kws-kd-tflite" and side["version"] == 1
        assert side["model"] == "tc_resnet" and side["labels"] == LABELS and side["multi_label"] is False
        assert side["quantize"] == ("int8" if mode.startswith("int8") else "float32")
        assert side["sample_rate"] == SR and side["input_samples"] == SR and side["clip_seconds"] == 1.0
        assert side["input"]["shape"] == [1, SR] and side["output"]["shape"] == [1, len(LABELS)]
        assert side["output"]["kind"] == "logits"
        assert side["size_bytes"] == path.stat().st_size
        assert side["ops"] == op_counts(path) and "CONV_2D" in side["ops"]
        assert side["front_end"]["window_ms"] == 40 and side["front_end"]["num_coeffs"] == 40
        assert side["source_run"] == str(trained_run["run"].resolve())
        assert side["test_metrics"]["accuracy"] == pytest.approx(trained_run["keras_acc"])
        if mode == "int8io":
            assert side["input"]["dtype"] == "int8" and side["input"]["quantization"]["scale"] > 0
            assert side["output"]["dtype"] == "int8"
        else:
            assert side["input"]["dtype"] == "float32" and side["input"]["quantization"] is None


@pytest.mark.slow
def test_export_prints_the_check(trained_run, exported, capsys):
    path = trained_run["root"] / "again.tflite"
    assert main(["export", "--tflite", "--run", str(trained_run["run"]), "--out", str(path), "--verify-clips", "40"]) == 0
    text = capsys.readouterr().out
    assert "top-1 agreement with Keras 100.00 %" in text
    assert "KiB" in text and " ops (" in text and "accuracy: Keras" in text


@pytest.mark.slow
def test_evaluate_tflite_matches_direct_litert(trained_run, exported):
    from kws_kd.tflite.evaluate import evaluate_tflite

    xt, yt = trained_run["xt"], trained_run["yt"]
    for mode in ("float32", "int8io"):
        metrics = evaluate_tflite(exported[mode], trained_run["data"], "test")
        expected = float(np.mean(np.argmax(_raw_logits(exported[mode], xt), -1) == yt))
        assert metrics["accuracy"] == pytest.approx(expected)
        assert metrics["clips"] == len(yt)


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", "--tflite", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "a.tflite")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["export", "--tflite", "--run", str(tmp_path), "--streaming", "--out", str(tmp_path / "a.tflite")]) == 2
    assert "is not a kws-kd run folder" in capsys.readouterr().err
    assert not (tmp_path / "a.tflite").exists()


@pytest.mark.slow
def test_streaming_of_a_conv_student_is_refused(trained_run, capsys):
    out = trained_run["root"] / "stream_tc.tflite"
    rc = main(["export", "--tflite", "--run", str(trained_run["run"]), "--streaming", "--out", str(out)])
    assert rc == 2 and "tc_resnet cannot stream" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_streaming_lstm_p_export_end_to_end(trained_run, tmp_path, capsys):
    """A trained LSTM-P run -> `--streaming` float32 and int8 files + sidecars, checked hop by hop.

    The check uses LiteRT's signature runner directly (not kws_kd's streaming
    runner): feed tail = first 320 samples, then consecutive 320-sample hops,
    carrying tail and state; the last logits must match the whole-clip Keras model.
    """
    from ai_edge_litert.interpreter import Interpreter

    from kws_kd.bench.host import host_latency
    from kws_kd.run import RunConfig, load_run, write_config, write_json
    from kws_kd.tflite.evaluate import evaluate_tflite
    from kws_kd.students.attention import strip
    from kws_kd.students.registry import build_student, make_config
    from kws_kd.tflite.clips import load_clips
    from kws_kd.tflite.verify import keras_logits

    config = {"units": 32, "projection": 16}
    x, y, _ = load_clips(trained_run["manifest"], "train", SR)
    keras.utils.set_random_seed(0)
    model = build_student("lstm_p", len(LABELS), SR, make_config("lstm_p", config), attention=True)
    infer = strip(model)
    infer.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    infer.fit(x, y, batch_size=32, epochs=6, verbose=0, shuffle=True)
    run = tmp_path / "run"
    write_config(run, RunConfig(model="lstm_p", labels=list(LABELS), student_config=config,
                                data=str(trained_run["data"])))
    model.save_weights(str(run / "best.weights.h5"))
    write_json(run / "test_metrics.json", {"accuracy": 0.0})
    whole = load_run(run).build_model(strip=True, for_export=True)
    xt = trained_run["xt"]
    ref = keras_logits(whole, xt)
    for mode in ("float32", "int8"):
        path = tmp_path / f"lstm_p_stream_{mode}.tflite"
        rc = main(["export", "--tflite", "--run", str(run), "--streaming", "--quantize", mode, "--out", str(path),
                   "--calibration-clips", "16", "--verify-clips", "20"])
        assert rc == 0, capsys.readouterr().err
        assert "top-1 agreement with Keras" in capsys.readouterr().out
        side = json.loads(path.with_suffix(".json").read_text())
        st = side["streaming"]
        assert (st["hop_samples"], st["window_samples"], st["tail_samples"]) == (320, 640, 320)
        assert st["states"] == {"state_r": [16], "state_c": [32]} and st["warmup_frames"] == 0
        assert set(st["tensors"]["inputs"]) == {"audio", "tail", "state_r", "state_c"}
        assert side["input"]["shape"] == [1, 320] and side["output"]["shape"] == [1, len(LABELS)]
        it = Interpreter(model_path=str(path))
        (key,) = it.get_signature_list()
        runner = it.get_signature_runner(key)
        outs = sorted(runner.get_output_details(), key=lambda k: int(k.rsplit("_", 1)[-1]))
        got = []
        for clip in xt:
            tail, r, c = clip[None, :320], np.zeros((1, 16), np.float32), np.zeros((1, 32), np.float32)
            for k in range(49):
                res = runner(audio=clip[None, 320 + 320 * k : 640 + 320 * k], tail=tail, state_r=r, state_c=c)
                logits, tail, r, c = (res[n] for n in outs)
            got.append(logits[0])
        got = np.array(got)
        if mode == "float32":
            np.testing.assert_allclose(got, ref, atol=1e-4)
        else:
            assert np.mean(np.argmax(got, -1) == np.argmax(ref, -1)) >= 0.9
        # `kws-kd eval --tflite` and the host latency read the sidecar and stream too
        metrics = evaluate_tflite(path, trained_run["data"], "test")
        assert metrics["clips"] == len(xt)
        assert metrics["accuracy"] == pytest.approx(float(np.mean(np.argmax(got, -1) == trained_run["yt"])))
        lat = host_latency(path, runs=3, warmup=1)
        assert lat["streaming"] and lat["frames"] == 49 and lat["median_ms"] > lat["hop_median_ms"] > 0


def test_missing_sidecar_is_a_clear_error(tmp_path):
    from kws_kd.errors import KwsKdError
    from kws_kd.tflite.sidecar import read_sidecar

    with pytest.raises(KwsKdError, match="sidecar"):
        read_sidecar(tmp_path / "m.tflite")
    (tmp_path / "m.json").write_text('{"format": "other"}')
    with pytest.raises(KwsKdError, match="not a kws-kd TFLite sidecar"):
        read_sidecar(tmp_path / "m.tflite")
