package org.kwskd.app.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The fields of a kws-kd sidecar (FILE.json beside FILE.tflite) that the app needs.
 *
 * <p>Schema: docs/architecture.md, "TFLite sidecar". Validation mirrors
 * {@code kws_kd.app_logic.parse_sidecar}: anything the app could not run correctly
 * (unknown format or version, int8 without quantization, an input that is not raw
 * audio of {@code input_samples}, an output that does not match the labels, a
 * streaming file whose {@code streaming} layout is missing or inconsistent) is
 * rejected with a one-line message naming the file.
 *
 * <p>A streaming file ({@code "streaming": {...}}) has {@link #streaming} set: its
 * {@code input} is one hop of audio and {@code input_samples} is only the clip length
 * it was verified on (0 when unknown).
 */
public final class Sidecar {
    public static final String FORMAT = "kws-kd-tflite";
    public static final int VERSION = 1;

    public final String model;
    public final String quantize;
    public final List<String> labels;
    public final boolean multiLabel;
    public final int sampleRate;
    public final int inputSamples;
    public final TensorSpec input;
    public final TensorSpec output;
    /** Null for a whole-clip file. */
    public final StreamingSpec streaming;

    private Sidecar(String model, String quantize, List<String> labels, boolean multiLabel,
                    int sampleRate, int inputSamples, TensorSpec input, TensorSpec output, StreamingSpec streaming) {
        this.model = model;
        this.quantize = quantize;
        this.labels = Collections.unmodifiableList(labels);
        this.multiLabel = multiLabel;
        this.sampleRate = sampleRate;
        this.inputSamples = inputSamples;
        this.input = input;
        this.output = output;
        this.streaming = streaming;
    }

    public boolean isStreaming() {
        return streaming != null;
    }

    /** Parses sidecar JSON text; {@code source} (usually the path) is named in every error. */
    public static Sidecar parse(String text, String source) throws SidecarException {
        Object root;
        try {
            root = Json.parse(text);
        } catch (Json.JsonException e) {
            throw fail(source, "not valid JSON (" + e.getMessage() + ")");
        }
        if (!(root instanceof Map)) {
            throw fail(source, "must be a JSON object");
        }
        Map<?, ?> obj = (Map<?, ?>) root;
        Object format = obj.get("format");
        if (!FORMAT.equals(format)) {
            throw fail(source, "'format' is " + format + ", expected '" + FORMAT + "'");
        }
        long version = integer(obj, "version", source, "");
        if (version != VERSION) {
            throw fail(source, "sidecar version " + version + " is not supported (this app reads version " + VERSION + ")");
        }
        Object block = obj.get("streaming");
        if (Boolean.TRUE.equals(block)) {
            throw fail(source, "'streaming' is true but the streaming layout is missing (re-export with kws-kd export --streaming)");
        }
        if (block != null && !Boolean.FALSE.equals(block) && !(block instanceof Map)) {
            throw fail(source, "field 'streaming' must be false or the streaming layout object");
        }
        boolean isStreaming = block instanceof Map;
        Object labelsObj = obj.get("labels");
        if (!(labelsObj instanceof List) || ((List<?>) labelsObj).isEmpty()) {
            throw fail(source, "field 'labels' must be a non-empty list of strings");
        }
        List<String> labels = new ArrayList<>();
        for (Object l : (List<?>) labelsObj) {
            if (!(l instanceof String)) {
                throw fail(source, "field 'labels' must be a non-empty list of strings");
            }
            labels.add((String) l);
        }
        Object multi = obj.containsKey("multi_label") ? obj.get("multi_label") : Boolean.FALSE;
        if (!(multi instanceof Boolean)) {
            throw fail(source, "field 'multi_label' must be true or false");
        }
        long rate = integer(obj, "sample_rate", source, "");
        long samples = integer(obj, "input_samples", source, "");
        // a streaming file's input_samples is the clip length it was verified on (0 when unknown): informational
        if (rate <= 0 || samples < 0 || (samples == 0 && !isStreaming) || rate > Integer.MAX_VALUE
                || samples > Integer.MAX_VALUE) {
            throw fail(source, "'sample_rate' and 'input_samples' must be positive");
        }
        TensorSpec in = tensor(obj.get("input"), source, "input", false);
        TensorSpec out = tensor(obj.get("output"), source, "output", true);
        StreamingSpec streaming = isStreaming ? StreamingSpec.parse((Map<?, ?>) block, source, in, out) : null;
        if (streaming == null && in.size() != samples) {
            throw fail(source, "input shape " + shapeString(in.shape) + " does not hold input_samples="
                    + samples + " (raw-audio models only)");
        }
        if (out.size() != labels.size()) {
            throw fail(source, "output shape " + shapeString(out.shape) + " does not match " + labels.size() + " labels");
        }
        return new Sidecar(stringOr(obj.get("model")), stringOr(obj.get("quantize")), labels,
                (Boolean) multi, (int) rate, (int) samples, in, out, streaming);
    }

    /** FILE.tflite -> FILE.json, the sidecar's place beside the model. */
    public static String sidecarPathFor(String modelPath) {
        int slash = modelPath.lastIndexOf('/');
        int dot = modelPath.lastIndexOf('.');
        String stem = dot > slash ? modelPath.substring(0, dot) : modelPath;
        return stem + ".json";
    }

    static SidecarException fail(String source, String problem) {
        return new SidecarException(source + ": " + problem);
    }

    private static String stringOr(Object o) {
        return o instanceof String ? (String) o : "";
    }

    static long integer(Map<?, ?> obj, String key, String source, String where) throws SidecarException {
        if (!obj.containsKey(key)) {
            throw fail(source, "missing field '" + where + key + "'");
        }
        Object v = obj.get(key);
        if (!(v instanceof Long)) {
            throw fail(source, "field '" + where + key + "' has the wrong type");
        }
        return (Long) v;
    }

    /** A non-empty list of positive ints, or null. */
    static int[] positiveInts(Object o) {
        if (!(o instanceof List) || ((List<?>) o).isEmpty()) {
            return null;
        }
        List<?> l = (List<?>) o;
        int[] out = new int[l.size()];
        for (int i = 0; i < out.length; i++) {
            Object d = l.get(i);
            if (!(d instanceof Long) || (Long) d <= 0 || (Long) d > Integer.MAX_VALUE) {
                return null;
            }
            out[i] = (int) (long) (Long) d;
        }
        return out;
    }

    static TensorSpec tensor(Object o, String source, String where, boolean isOutput) throws SidecarException {
        if (!(o instanceof Map)) {
            throw fail(source, "field '" + where + "' must be an object");
        }
        Map<?, ?> t = (Map<?, ?>) o;
        String prefix = where + ".";
        Object shapeObj = t.get("shape");
        if (!t.containsKey("shape")) {
            throw fail(source, "missing field '" + prefix + "shape'");
        }
        if (!(shapeObj instanceof List) || ((List<?>) shapeObj).isEmpty()) {
            throw fail(source, "field '" + prefix + "shape' must be a list of positive integers");
        }
        List<?> shapeList = (List<?>) shapeObj;
        int[] shape = new int[shapeList.size()];
        for (int i = 0; i < shape.length; i++) {
            Object d = shapeList.get(i);
            if (!(d instanceof Long) || (Long) d <= 0 || (Long) d > Integer.MAX_VALUE) {
                throw fail(source, "field '" + prefix + "shape' must be a list of positive integers");
            }
            shape[i] = (int) (long) (Long) d;
        }
        Object dtypeObj = t.get("dtype");
        if (!(dtypeObj instanceof String)) {
            throw fail(source, "missing field '" + prefix + "dtype'");
        }
        String dtype = (String) dtypeObj;
        if (!TensorSpec.FLOAT32.equals(dtype) && !TensorSpec.INT8.equals(dtype)) {
            throw fail(source, "field '" + prefix + "dtype' is '" + dtype + "'; the app handles float32 and int8");
        }
        Quantization quant = null;
        if (TensorSpec.INT8.equals(dtype)) {
            Object q = t.get("quantization");
            if (!(q instanceof Map)) {
                throw fail(source, "int8 tensor '" + where + "' needs 'quantization' with scale and zero_point");
            }
            Map<?, ?> qm = (Map<?, ?>) q;
            Object scale = qm.get("scale");
            if (!(scale instanceof Number)) {
                throw fail(source, "missing field '" + prefix + "quantization.scale'");
            }
            double s = ((Number) scale).doubleValue();
            if (!(s > 0) || Double.isInfinite(s)) {
                throw fail(source, "field '" + prefix + "quantization.scale' must be a positive number");
            }
            long zp = integer(qm, "zero_point", source, prefix + "quantization.");
            if (zp < -128 || zp > 127) {
                throw fail(source, "field '" + prefix + "quantization.zero_point' must be in [-128, 127]");
            }
            quant = new Quantization(s, (int) zp);
        }
        String kind = "logits";
        if (isOutput && t.containsKey("kind")) {
            Object k = t.get("kind");
            if (!"logits".equals(k) && !"probabilities".equals(k)) {
                throw fail(source, "field '" + prefix + "kind' is '" + k + "'; expected 'logits' or 'probabilities'");
            }
            kind = (String) k;
        }
        return new TensorSpec(stringOr(t.get("name")), shape, dtype, quant, kind);
    }

    static String shapeString(int[] shape) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(shape[i]);
        }
        return sb.append(']').toString();
    }
}
