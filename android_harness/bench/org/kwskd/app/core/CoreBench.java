package org.kwskd.app.core;

import java.util.Arrays;
import java.util.Locale;

/**
 * Per-hop cost of the app's logic without the model: ring snapshot, int16 to
 * float/int8 conversion, posteriors, smoothing, decoding. Run by
 * benchmarks/android_core_overhead.py, which compiles it with the core classes.
 * Prints one JSON object per configuration.
 *
 * <p>args: hops warmupHops
 */
public final class CoreBench {
    public static void main(String[] args) throws Exception {
        int hops = Integer.parseInt(args[0]);
        int warmup = Integer.parseInt(args[1]);
        for (int seconds : new int[] {1, 8}) {
            for (String dtype : new String[] {"float32", "int8"}) {
                run(seconds * 16000, dtype, hops, warmup);
            }
        }
    }

    private static void run(int samples, String dtype, int hops, int warmup) throws Exception {
        String quant = dtype.equals("int8") ? "{\"scale\": 0.0078431377, \"zero_point\": -1}" : "null";
        String json = "{\"format\": \"kws-kd-tflite\", \"version\": 1, \"labels\": [\"_silence_\", \"_unknown_\", "
                + "\"yes\", \"no\", \"up\", \"down\", \"left\", \"right\", \"on\", \"off\", \"stop\", \"go\"], "
                + "\"multi_label\": false, \"sample_rate\": 16000, \"input_samples\": " + samples + ", "
                + "\"input\": {\"shape\": [1, " + samples + "], \"dtype\": \"" + dtype + "\", \"quantization\": " + quant + "}, "
                + "\"output\": {\"shape\": [1, 12], \"dtype\": \"" + dtype + "\", \"quantization\": " + quant + ", \"kind\": \"logits\"}}";
        Sidecar sc = Sidecar.parse(json, "bench");
        TensorData out = dtype.equals("int8") ? TensorData.ofInt8(new byte[12]) : TensorData.ofFloats(new float[12]);
        Model model = input -> out; // no model cost: we time everything else
        StreamOptions opts = new StreamOptions(250, 3, 0.5, 1, false);
        KeywordStream stream = new KeywordStream(sc, model, opts, System::nanoTime);
        int hop = HopScheduler.hopSamples(250, 16000);
        short[] chunk = new short[hop];
        java.util.Random rng = new java.util.Random(0);
        for (int i = 0; i < chunk.length; i++) {
            chunk[i] = (short) (rng.nextGaussian() * 3000);
        }
        // fill the ring so every later chunk triggers exactly one inference
        for (int filled = 0; filled < samples - hop; filled += hop) {
            stream.feed(chunk, 0, Math.min(hop, samples - hop - filled));
        }
        long[] t = new long[hops];
        int done = 0;
        for (int i = 0; i < warmup + hops; i++) {
            long t0 = System.nanoTime();
            int n = stream.feed(chunk).size();
            long dt = System.nanoTime() - t0;
            if (n != 1) {
                throw new IllegalStateException("expected one inference per hop, got " + n);
            }
            if (i >= warmup) {
                t[done++] = dt;
            }
        }
        Arrays.sort(t);
        System.out.println(String.format(Locale.ROOT,
                "{\"window_samples\": %d, \"dtype\": \"%s\", \"hops\": %d, \"median_us\": %.2f, \"p90_us\": %.2f, \"min_us\": %.2f}",
                samples, dtype, hops, t[hops / 2] / 1e3, t[(int) (0.9 * (hops - 1))] / 1e3, t[0] / 1e3));
    }
}
