package org.kwskd.app.core;

/**
 * int16 PCM to the model's input tensor, the same arithmetic as kws_kd.app_logic.
 *
 * <p>float32: {@code pcm / 32768f} (exact, the divisor is a power of two).
 * int8: {@code clamp(roundHalfAway(pcm / 32768.0 / scale) + zeroPoint, -128, 127)}
 * in double precision; half away from zero is how TFLite's own quantize rounds.
 * A raw-audio model needs no other DSP: its front end is inside the .tflite.
 *
 * <p>For int8, {@link #int8Table} precomputes the answer for all 65,536 int16 values
 * (64 KiB) with {@link #quantize} itself, so the per-hop conversion is a table
 * lookup and still exactly the same arithmetic.
 */
public final class InputConverter {
    public static final double PCM_SCALE = 32768.0;

    private InputConverter() {
    }

    public static double roundHalfAway(double v) {
        return Math.signum(v) * Math.floor(Math.abs(v) + 0.5);
    }

    public static float toFloat(short pcm) {
        return pcm / 32768f;
    }

    public static byte quantize(short pcm, Quantization q) {
        double v = (pcm / PCM_SCALE) / q.scale;
        double r = roundHalfAway(v) + q.zeroPoint;
        if (r < -128) {
            r = -128;
        } else if (r > 127) {
            r = 127;
        }
        return (byte) (int) r;
    }

    /** quantize(pcm, q) for every int16 value, indexed by pcm + 32768. */
    public static byte[] int8Table(Quantization q) {
        byte[] table = new byte[65536];
        for (int v = -32768; v <= 32767; v++) {
            table[v + 32768] = quantize((short) v, q);
        }
        return table;
    }

    /** int8 input through a table from {@link #int8Table}. */
    public static TensorData convertWithTable(short[] window, byte[] table) {
        byte[] out = new byte[window.length];
        for (int i = 0; i < window.length; i++) {
            out[i] = table[window[i] + 32768];
        }
        return TensorData.ofInt8(out);
    }

    /** The model input for one window of PCM, in the dtype the sidecar asks for. */
    public static TensorData convert(short[] window, TensorSpec spec) {
        if (spec.isInt8()) {
            byte[] out = new byte[window.length];
            for (int i = 0; i < window.length; i++) {
                out[i] = quantize(window[i], spec.quantization);
            }
            return TensorData.ofInt8(out);
        }
        float[] out = new float[window.length];
        for (int i = 0; i < window.length; i++) {
            out[i] = toFloat(window[i]);
        }
        return TensorData.ofFloats(out);
    }
}
