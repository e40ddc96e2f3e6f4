package org.kwskd.app.core;

/**
 * Model output to class posteriors, in double precision.
 *
 * <p>int8 outputs are dequantized with the sidecar's scale and zero point; logits
 * become probabilities by softmax (single-label) or sigmoid (multi-label), as the
 * sidecar contract says; outputs of kind "probabilities" are used as they are.
 */
public final class Posteriors {
    private Posteriors() {
    }

    public static double[] dequantize(TensorData raw, TensorSpec spec) {
        double[] out = new double[raw.length()];
        if (raw.isInt8()) {
            Quantization q = spec.quantization;
            for (int i = 0; i < out.length; i++) {
                out[i] = ((double) raw.bytes[i] - q.zeroPoint) * q.scale;
            }
        } else {
            for (int i = 0; i < out.length; i++) {
                out[i] = raw.floats[i];
            }
        }
        return out;
    }

    public static double[] softmax(double[] v) {
        double max = Double.NEGATIVE_INFINITY;
        for (double x : v) {
            max = Math.max(max, x);
        }
        double[] e = new double[v.length];
        double sum = 0;
        for (int i = 0; i < v.length; i++) {
            e[i] = Math.exp(v[i] - max);
            sum += e[i];
        }
        for (int i = 0; i < v.length; i++) {
            e[i] /= sum;
        }
        return e;
    }

    public static double[] sigmoid(double[] v) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = 1.0 / (1.0 + Math.exp(-v[i]));
        }
        return out;
    }

    public static double[] fromOutput(TensorData raw, Sidecar sidecar) {
        double[] values = dequantize(raw, sidecar.output);
        if ("probabilities".equals(sidecar.output.kind)) {
            return values;
        }
        return sidecar.multiLabel ? sigmoid(values) : softmax(values);
    }
}
