package org.kwskd.app.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The sidecar's {@code streaming} block: how to drive a streaming file, one hop of audio per call.
 *
 * <p>Written by {@code kws-kd export --tflite --streaming} ({@code StreamingLayout.to_dict()} plus a
 * {@code tensors} entry describing every named signature input and output; docs/export.md). Inputs,
 * in this order: {@code audio} [hop], {@code tail} [window - hop], then the states in layout order;
 * outputs: {@code logits}, {@code tail_out}, then {@code STATE_out} for each state. Validation mirrors
 * {@code kws_kd.app_logic._streaming_spec}.
 */
public final class StreamingSpec {
    /** One state tensor: fed as {@link #input}, its next value returned as {@link #output}. */
    public static final class State {
        public final String name;
        /** Shape without the batch dimension. */
        public final int[] shape;
        public final TensorSpec input;
        public final TensorSpec output;
        /** Held at zero after each of the first {@link StreamingSpec#warmupFrames} calls. */
        public final boolean recurrent;

        State(String name, int[] shape, TensorSpec input, TensorSpec output, boolean recurrent) {
            this.name = name;
            this.shape = shape.clone();
            this.input = input;
            this.output = output;
            this.recurrent = recurrent;
        }
    }

    public final int hopSamples;
    public final int windowSamples;
    public final int tailSamples;
    public final int warmupFrames;
    public final TensorSpec audio;
    public final TensorSpec tail;
    /** The sidecar's {@code output}, with its kind. */
    public final TensorSpec logits;
    public final TensorSpec tailOut;
    public final List<State> states;

    private StreamingSpec(int hop, int window, int warmup, TensorSpec audio, TensorSpec tail, TensorSpec logits,
                          TensorSpec tailOut, List<State> states) {
        this.hopSamples = hop;
        this.windowSamples = window;
        this.tailSamples = window - hop;
        this.warmupFrames = warmup;
        this.audio = audio;
        this.tail = tail;
        this.logits = logits;
        this.tailOut = tailOut;
        this.states = Collections.unmodifiableList(states);
    }

    /** audio, tail, then every state input: the order of {@link Model#runFrame}'s inputs. */
    public List<TensorSpec> inputs() {
        List<TensorSpec> out = new ArrayList<>();
        out.add(audio);
        out.add(tail);
        for (State s : states) {
            out.add(s.input);
        }
        return out;
    }

    /** logits, tail_out, then every state output: the order of {@link Model#runFrame}'s outputs. */
    public List<TensorSpec> outputs() {
        List<TensorSpec> out = new ArrayList<>();
        out.add(logits);
        out.add(tailOut);
        for (State s : states) {
            out.add(s.output);
        }
        return out;
    }

    static StreamingSpec parse(Map<?, ?> block, String source, TensorSpec in, TensorSpec out) throws SidecarException {
        String w = "streaming.";
        long hop = Sidecar.integer(block, "hop_samples", source, w);
        long window = Sidecar.integer(block, "window_samples", source, w);
        if (hop <= 0 || window <= hop || window > Integer.MAX_VALUE) {
            throw Sidecar.fail(source, "'streaming.hop_samples' must be positive and 'streaming.window_samples' larger");
        }
        if (block.containsKey("tail_samples") && Sidecar.integer(block, "tail_samples", source, w) != window - hop) {
            throw Sidecar.fail(source, "'streaming.tail_samples' is not window_samples - hop_samples");
        }
        Object statesObj = block.get("states");
        if (!block.containsKey("states")) {
            throw Sidecar.fail(source, "missing field 'streaming.states'");
        }
        if (!(statesObj instanceof Map)) {
            throw Sidecar.fail(source, "field 'streaming.states' has the wrong type");
        }
        Map<?, ?> statesMap = (Map<?, ?>) statesObj;
        List<String> names = new ArrayList<>();
        List<int[]> shapes = new ArrayList<>();
        for (Map.Entry<?, ?> e : statesMap.entrySet()) {
            String name = (String) e.getKey();
            int[] shape = Sidecar.positiveInts(e.getValue());
            if (shape == null) {
                throw Sidecar.fail(source, "field 'streaming.states." + name + "' must be a list of positive integers");
            }
            names.add(name);
            shapes.add(shape);
        }
        long warmup = block.containsKey("warmup_frames") ? Sidecar.integer(block, "warmup_frames", source, w) : 0;
        if (warmup < 0 || warmup > Integer.MAX_VALUE) {
            throw Sidecar.fail(source, "'streaming.warmup_frames' must not be negative");
        }
        List<String> recurrent = new ArrayList<>();
        if (block.containsKey("recurrent")) {
            Object r = block.get("recurrent");
            if (!(r instanceof List)) {
                throw Sidecar.fail(source, "field 'streaming.recurrent' has the wrong type");
            }
            for (Object o : (List<?>) r) {
                if (!(o instanceof String) || !statesMap.containsKey(o)) {
                    throw Sidecar.fail(source, "'streaming.recurrent' names '" + o + "', which is not a state");
                }
                recurrent.add((String) o);
            }
        }
        Map<?, ?> tensors = object(block, "tensors", source, w);
        Map<?, ?> tIn = object(tensors, "inputs", source, w + "tensors.");
        Map<?, ?> tOut = object(tensors, "outputs", source, w + "tensors.");
        int tail = (int) (window - hop);
        TensorSpec audio = sized(find(tIn, "inputs", "audio", source), "inputs.audio", (int) hop, source);
        TensorSpec tailIn = sized(find(tIn, "inputs", "tail", source), "inputs.tail", tail, source);
        TensorSpec logits = find(tOut, "outputs", "logits", source);
        TensorSpec tailOut = sized(find(tOut, "outputs", "tail_out", source), "outputs.tail_out", tail, source);
        List<State> states = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            String name = names.get(i);
            int n = 1;
            for (int d : shapes.get(i)) {
                n *= d;
            }
            TensorSpec si = sized(find(tIn, "inputs", name, source), "inputs." + name, n, source);
            TensorSpec so = sized(find(tOut, "outputs", name + "_out", source), "outputs." + name + "_out", n, source);
            states.add(new State(name, shapes.get(i), si, so, recurrent.contains(name)));
        }
        if (in.size() != hop) {
            throw Sidecar.fail(source, "input shape " + Sidecar.shapeString(in.shape) + " does not hold one hop of "
                    + hop + " samples (streaming file)");
        }
        if (!same(in, audio) || !same(out, logits)) {
            throw Sidecar.fail(source, "'input'/'output' differ from 'streaming.tensors' audio/logits");
        }
        logits = new TensorSpec(logits.name, logits.shape, logits.dtype, logits.quantization, out.kind);
        return new StreamingSpec((int) hop, (int) window, (int) warmup, audio, tailIn, logits, tailOut, states);
    }

    private static Map<?, ?> object(Map<?, ?> obj, String key, String source, String where) throws SidecarException {
        if (!obj.containsKey(key)) {
            throw Sidecar.fail(source, "missing field '" + where + key + "'");
        }
        Object v = obj.get(key);
        if (!(v instanceof Map)) {
            throw Sidecar.fail(source, "field '" + where + key + "' has the wrong type");
        }
        return (Map<?, ?>) v;
    }

    private static TensorSpec find(Map<?, ?> group, String kind, String key, String source) throws SidecarException {
        String where = "streaming.tensors." + kind + "." + key;
        if (!group.containsKey(key)) {
            throw Sidecar.fail(source, "missing field '" + where + "'");
        }
        TensorSpec spec = Sidecar.tensor(group.get(key), source, where, false);
        if ("inputs".equals(kind) && spec.name.isEmpty()) { // signature inputs are named by their key
            spec = new TensorSpec(key, spec.shape, spec.dtype, spec.quantization, spec.kind);
        }
        if (spec.name.isEmpty()) {
            throw Sidecar.fail(source, "field '" + where + ".name' must name the file's signature output");
        }
        return spec;
    }

    private static TensorSpec sized(TensorSpec spec, String where, int size, String source) throws SidecarException {
        if (spec.size() != size) {
            throw Sidecar.fail(source, "'streaming.tensors." + where + "' has shape " + Sidecar.shapeString(spec.shape)
                    + ", expected " + size + " values");
        }
        return spec;
    }

    private static boolean same(TensorSpec a, TensorSpec b) {
        if (!a.dtype.equals(b.dtype) || a.size() != b.size()) {
            return false;
        }
        if (a.quantization == null || b.quantization == null) {
            return a.quantization == b.quantization;
        }
        return a.quantization.scale == b.quantization.scale && a.quantization.zeroPoint == b.quantization.zeroPoint;
    }
}
