package org.kwskd.app.core;

import java.util.Arrays;
import java.util.List;

/**
 * What a streaming file carries from one call to the next: the tail and the state tensors.
 *
 * <p>Mirrors {@code kws_kd.tflite.streaming.StreamingTFLite} (and {@code kws_kd.app_logic.StreamingState}):
 * <ul>
 *   <li>{@link #reset}: tail and states are zeros, no calls made;</li>
 *   <li>carried values are float32: an int8 output is dequantized as
 *       {@code ((float) q - zeroPoint) * (float) scale} in float arithmetic, a float32 output kept;</li>
 *   <li>an int8 input is requantized from the carried value like the audio:
 *       {@code clamp(roundHalfAway((double) v / scale) + zeroPoint, -128, 127)} in double;</li>
 *   <li>after each of the first {@code warmup_frames} calls the {@code recurrent} states are set back
 *       to zero (CRNN: the convolution buffers are still filling).</li>
 * </ul>
 * Not thread-safe, like {@link KeywordStream}.
 */
public final class StreamingState {
    private final StreamingSpec spec;
    private final List<TensorSpec> outputSpecs;
    private final byte[] audioTable; // null for float32 audio
    private float[] tail;
    private final float[][] states;
    private int calls;

    public StreamingState(StreamingSpec spec) {
        this.spec = spec;
        this.outputSpecs = spec.outputs();
        this.audioTable = spec.audio.isInt8() ? InputConverter.int8Table(spec.audio.quantization) : null;
        this.states = new float[spec.states.size()][];
        reset();
    }

    public void reset() {
        tail = new float[spec.tailSamples];
        for (int i = 0; i < states.length; i++) {
            states[i] = new float[spec.states.get(i).input.size()];
        }
        calls = 0;
    }

    /** Calls absorbed since the last reset. */
    public int calls() {
        return calls;
    }

    /** The carried tail (float32 values; a copy). */
    public float[] tail() {
        return tail.clone();
    }

    /** The carried value of state {@code i} in layout order (a copy). */
    public float[] state(int i) {
        return states[i].clone();
    }

    /** The inputs of the next call for the newest hop of PCM: audio, tail, states. */
    public TensorData[] inputs(short[] hopPcm) {
        if (hopPcm.length != spec.hopSamples) {
            throw new IllegalArgumentException("a streaming call takes " + spec.hopSamples + " samples, got " + hopPcm.length);
        }
        TensorData[] in = new TensorData[2 + states.length];
        in[0] = audioTable != null ? InputConverter.convertWithTable(hopPcm, audioTable)
                : InputConverter.convert(hopPcm, spec.audio);
        in[1] = toInput(tail, spec.tail);
        for (int i = 0; i < states.length; i++) {
            in[2 + i] = toInput(states[i], spec.states.get(i).input);
        }
        return in;
    }

    /** Carries one call's outputs (logits, tail_out, states_out) to the next call. */
    public void absorb(TensorData[] outputs) {
        if (outputs == null || outputs.length != outputSpecs.size()) {
            throw new IllegalStateException("a streaming call returned " + (outputs == null ? 0 : outputs.length)
                    + " tensors, the sidecar expects " + outputSpecs.size());
        }
        for (int i = 0; i < outputs.length; i++) {
            TensorSpec s = outputSpecs.get(i);
            if (outputs[i].length() != s.size() || outputs[i].isInt8() != s.isInt8()) {
                throw new IllegalStateException("streaming output '" + s.name + "' has " + outputs[i].length()
                        + (outputs[i].isInt8() ? " int8" : " float32") + " values, the sidecar expects " + s.size()
                        + " " + s.dtype);
            }
        }
        tail = carriedValue(outputs[1], spec.tailOut);
        for (int i = 0; i < states.length; i++) {
            states[i] = carriedValue(outputs[2 + i], spec.states.get(i).output);
        }
        calls++;
        if (calls <= spec.warmupFrames) {
            for (int i = 0; i < states.length; i++) {
                if (spec.states.get(i).recurrent) {
                    Arrays.fill(states[i], 0f);
                }
            }
        }
    }

    /** An output tensor as the float32 value carried to the next call. */
    public static float[] carriedValue(TensorData raw, TensorSpec spec) {
        if (raw.isInt8()) {
            float scale = (float) spec.quantization.scale;
            float zero = spec.quantization.zeroPoint;
            float[] out = new float[raw.bytes.length];
            for (int i = 0; i < out.length; i++) {
                out[i] = ((float) raw.bytes[i] - zero) * scale;
            }
            return out;
        }
        return raw.floats.clone();
    }

    /** A carried float32 value as an input tensor of the spec's dtype. */
    public static TensorData toInput(float[] value, TensorSpec spec) {
        if (!spec.isInt8()) {
            return TensorData.ofFloats(value.clone());
        }
        Quantization q = spec.quantization;
        byte[] out = new byte[value.length];
        for (int i = 0; i < out.length; i++) {
            double r = InputConverter.roundHalfAway((double) value[i] / q.scale) + q.zeroPoint;
            out[i] = (byte) (int) Math.max(-128, Math.min(127, r));
        }
        return TensorData.ofInt8(out);
    }
}
