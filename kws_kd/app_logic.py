"""Numpy reference of the Android sample app's logic (android_harness/).

The app keeps the last `input_samples` of microphone PCM in a ring buffer, runs
the model every hop, converts int16 PCM to the model's input dtype, turns the
output into posteriors, smooths them over a few hops and decodes the top label.
This module does exactly the same arithmetic in the same order as the plain-Java
classes in `android_harness/app/src/main/java/org/kwskd/app/core/`, so the
golden file written by `android_harness/make_golden.py` pins both sides:
integers must match exactly and floats to ~1e-6.

Arithmetic rules shared with the Java side (see docs/android.md):
- float input: ``pcm / 32768`` in float32 (exact: a power-of-two divisor).
- int8 input: ``clamp(round_half_away(pcm / 32768 / scale) + zero_point, -128, 127)``
  computed in float64; half away from zero is what TFLite's own quantize uses.
- int8 output: ``(q - zero_point) * scale`` in float64.
- posteriors in float64: softmax (single-label) or sigmoid (multi-label) of
  logits; ``"kind": "probabilities"`` outputs are used as they are.
- smoothing: plain mean of the last N posterior vectors, summed oldest first.
- decoding: first index of the maximum; "detected" when its smoothed posterior
  reaches the threshold and the label is not a filler (``_silence_`` etc.).
- announcing (`detection_events` over a whole stream, `Announcer` hop by hop;
  Java: `Announcer`): once per onset of a detected label, at most one
  announcement per suppression time.
- hop scheduling: the first inference runs as soon as the ring holds a full
  window, then one every ``hop`` samples: after ``input_samples + k * hop``
  samples have been written.
- streaming files (sidecar ``"streaming": {...}``, `StreamingSpec`): one call
  per ``hop_samples`` of audio, from the first hop on. The tail and state
  tensors are carried from each call's outputs to the next call's inputs
  (`StreamingState`), exactly as `kws_kd.tflite.streaming.StreamingTFLite`
  does: zeros at the start, carried values kept as float32 (an int8 output is
  dequantized ``(float32(q) - zero_point) * float32(scale)`` in float32), an
  int8 input requantized from them in float64 like the audio, and the
  ``recurrent`` states reset to zero after each of the first
  ``warmup_frames`` calls.

Numpy only: it never imports TensorFlow, so the golden test stays fast.

This module is the mirror's one public face; the code lives in `kws_kd.app`:
`sidecar` (the one sidecar reader), `tensors` (I/O conversion, posteriors),
`decoding` (smoothing, decoding, announcing) and `stream` (ring buffer, hop
schedule, streaming state, `KeywordStream`).
"""


from kws_kd.app.decoding import (
    DEFAULT_SMOOTHING_WINDOWS,
    DEFAULT_SUPPRESSION_S,
    DEFAULT_THRESHOLD,
    Announcer,
    Decision,
    PosteriorSmoother,
    decode,
    decode_batch,
    detection_events,
    is_filler,
)
from kws_kd.app.sidecar import (
    SIDECAR_FORMAT,
    SIDECAR_VERSION,
    Quantization,
    Sidecar,
    StateSpec,
    StreamingSpec,
    TensorSpec,
    load_sidecar,
    parse_sidecar,
    sidecar_path_for,
)
from kws_kd.app.stream import (
    DEFAULT_HOP_MS,
    FrameModel,
    HopResult,
    HopScheduler,
    KeywordStream,
    Model,
    RingBuffer,
    StreamingState,
    hop_samples,
    signature_runner_model,
)
from kws_kd.app.tensors import (
    PCM_SCALE,
    carried_input,
    carried_value,
    dequantize_output,
    pcm_to_float,
    posteriors,
    prepare_input,
    quantize_pcm,
    quantize_real,
    round_half_away,
    sigmoid,
    softmax,
)

__all__ = [
    "DEFAULT_HOP_MS", "DEFAULT_SMOOTHING_WINDOWS", "DEFAULT_SUPPRESSION_S", "DEFAULT_THRESHOLD", "PCM_SCALE",
    "SIDECAR_FORMAT", "SIDECAR_VERSION", "Announcer", "Decision", "FrameModel", "HopResult", "HopScheduler",
    "KeywordStream", "Model", "PosteriorSmoother", "Quantization", "RingBuffer", "Sidecar", "StateSpec",
    "StreamingSpec", "StreamingState", "TensorSpec", "carried_input", "carried_value", "decode", "decode_batch",
    "dequantize_output", "detection_events", "hop_samples", "is_filler", "load_sidecar", "parse_sidecar",
    "pcm_to_float", "posteriors", "prepare_input", "quantize_pcm", "quantize_real", "round_half_away", "sigmoid",
    "sidecar_path_for", "signature_runner_model", "softmax",
]
