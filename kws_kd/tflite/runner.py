"""Run a .tflite classifier with LiteRT (ai-edge-litert), the maintained host runtime.

Takes float audio in [-1, 1] and returns float logits whatever the file's I/O
dtypes: an int8 input is `round(x / scale) + zero_point` clamped to [-128, 127],
an int8 output is dequantized, exactly as the sidecar documents it.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError
from kws_kd.int8 import quantize


def _interpreter(path: str | os.PathLike, num_threads: int | None = None, xnnpack: bool = True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = Path(path)
    if not path.is_file():
        raise KwsKdError(f"{path}: no such .tflite file")
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interp = Interpreter(model_path=str(path), num_threads=num_threads, experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise KwsKdError(f"{path}: LiteRT cannot load it: {str(exc).splitlines()[0][:200]}") from None
    return interp


def _quant(detail: dict) -> dict | None:
    scale, zero = detail.get("quantization", (0.0, 0))
    if detail["dtype"] in (np.int8, np.uint8, np.int16) and scale:
        return {"scale": float(scale), "zero_point": int(zero)}
    return None


class TFLiteClassifier:
    """A loaded .tflite model: `logits(audio[samples]) -> float logits[C]`."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = 1, xnnpack: bool = True):
        self.path = Path(path)
        self.interpreter = _interpreter(path, num_threads, xnnpack)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_quant = _quant(self.input)
        self.output_quant = _quant(self.output)

    @property
    def input_samples(self) -> int:
        return int(self.input["shape"][-1])

    def set_audio(self, audio: np.ndarray) -> None:
        x = np.asarray(audio, dtype=np.float32).reshape(self.input["shape"])
        if self.input_quant is not None:
            x = quantize(x, self.input_quant["scale"], self.input_quant["zero_point"], self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"]))

    def get_logits(self) -> np.ndarray:
        y = self.interpreter.get_tensor(self.output["index"]).astype(np.float32)
        if self.output_quant is not None:
            y = (y - self.output_quant["zero_point"]) * self.output_quant["scale"]
        return y.reshape(-1)

    def logits(self, audio: np.ndarray) -> np.ndarray:
        """Logits for one clip of exactly `input_samples` float samples."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if audio.shape[0] != self.input_samples:
            raise KwsKdError(f"{self.path}: expects {self.input_samples} samples, got {audio.shape[0]}")
        self.set_audio(audio)
        self.interpreter.invoke()
        return self.get_logits()

    def logits_batch(self, clips: np.ndarray) -> np.ndarray:
        return np.stack([self.logits(c) for c in clips])


def op_counts(path: str | os.PathLike) -> dict[str, int]:
    """Builtin op name -> how many times it occurs in the main graph (e.g. {"FULLY_CONNECTED": 3})."""
    interp = _interpreter(path, num_threads=1, xnnpack=False)
    names = [op["op_name"] for op in interp._get_ops_details()]
    return dict(sorted(Counter(names).items()))


def io_details(path: str | os.PathLike) -> dict:
    """Input/output name, shape, dtype and quantization as the sidecar writes them."""
    clf = TFLiteClassifier(path, num_threads=1, xnnpack=False)

    def describe(d: dict) -> dict:
        return {
            "name": d["name"],
            "shape": [int(s) for s in d["shape"]],
            "dtype": np.dtype(d["dtype"]).name,
            "quantization": _quant(d),
        }

    return {"input": describe(clf.input), "output": describe(clf.output)}


def signature_details(path: str | os.PathLike, state_names: list[str]) -> dict:
    """{"inputs": {name: detail}, "outputs": {role: detail}} of a streaming file's one signature, for the sidecar.

    Output roles are logits, tail_out and STATE_out, in Keras's output_0..
    order (the streaming model's outputs: logits, tail, then the states).
    """
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    (key,) = it.get_signature_list()
    runner = it.get_signature_runner(key)

    def describe(name: str, d: dict) -> dict:
        return {"name": name, "shape": [int(x) for x in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                "quantization": _quant(d)}

    inputs = {n: describe(n, d) for n, d in runner.get_input_details().items()}
    outs = runner.get_output_details()
    order = sorted(outs, key=lambda k: int(k.rsplit("_", 1)[-1]))
    roles = ["logits", "tail_out"] + [f"{n}_out" for n in state_names]
    return {"inputs": inputs, "outputs": {role: describe(name, outs[name]) for role, name in zip(roles, order)}}
