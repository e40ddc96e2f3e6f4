package org.kwskd.app.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * Streaming files against streaming_golden.json (android_harness/make_golden.py: kws_kd.app_logic's
 * streaming path driving a stub interpreter). Per hop, every tensor the Java core hands the model
 * (audio, tail, states: built from the carried outputs of the previous call, zeros at the start,
 * the recurrent state held at zero during the warm-up) must equal Python's exactly; the replay then
 * answers with the recorded outputs, and posteriors, smoothing, decisions and announcements must match.
 */
public class StreamingGoldenTest {
    private static final double TOL = 1e-9;

    static Map<String, Object> golden() throws Exception {
        return Resources.map(Json.parse(Resources.text("/golden/streaming_golden.json")));
    }

    static Sidecar sidecar(Map<String, Object> c) throws Exception {
        String name = (String) c.get("sidecar");
        return Sidecar.parse(Resources.text("/golden/" + name), name);
    }

    static short[] pcm(Map<String, Object> g) {
        long[] v = Resources.longs(g.get("pcm"));
        short[] out = new short[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = (short) v[i];
        }
        return out;
    }

    /** Output role names in layout order: logits, tail_out, STATE_out. */
    static List<String> outputRoles(StreamingSpec spec) {
        List<String> roles = new ArrayList<>(Arrays.asList("logits", "tail_out"));
        for (StreamingSpec.State s : spec.states) {
            roles.add(s.name + "_out");
        }
        return roles;
    }

    static TensorData tensor(Object values, TensorSpec spec) {
        List<Object> l = Resources.list(values);
        if (spec.isInt8()) {
            byte[] b = new byte[l.size()];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) (long) (Long) l.get(i);
            }
            return TensorData.ofInt8(b);
        }
        float[] f = new float[l.size()];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) ((Number) l.get(i)).doubleValue();
        }
        return TensorData.ofFloats(f);
    }

    static double[] values(TensorData t) {
        double[] out = new double[t.length()];
        for (int i = 0; i < out.length; i++) {
            out[i] = t.isInt8() ? t.bytes[i] : t.floats[i];
        }
        return out;
    }

    static void assertTensor(String where, TensorData want, TensorData got) {
        assertEquals(where + " dtype", want.isInt8(), got.isInt8());
        if (want.isInt8()) {
            assertArrayEquals(where, want.bytes, got.bytes);
        } else {
            assertArrayEquals(where, want.floats, got.floats, 0f); // bit for bit (0f also equates -0f and 0f)
        }
    }

    /** Checks every input against the golden hop and answers with the recorded outputs. */
    static final class ReplayFrameModel implements Model {
        final Map<String, Object> c;
        final StreamingSpec spec;
        final List<Object> hops;
        int calls;

        ReplayFrameModel(Map<String, Object> c, StreamingSpec spec) {
            this.c = c;
            this.spec = spec;
            this.hops = Resources.list(c.get("hops"));
        }

        @Override
        public TensorData run(TensorData input) {
            throw new AssertionError("a streaming file must run through runFrame");
        }

        @Override
        public TensorData[] runFrame(TensorData[] inputs) {
            Map<String, Object> hop = Resources.map(hops.get(calls));
            String where = c.get("name") + " call " + calls;
            List<TensorSpec> ins = spec.inputs();
            assertEquals(where, ins.size(), inputs.length);
            int end = (int) (long) (Long) hop.get("end_sample");
            List<Object> audio = Resources.list(c.get("audio_input")).subList(end - spec.hopSamples, end);
            assertTensor(where + " audio", tensor(audio, spec.audio), inputs[0]);
            Map<String, Object> recorded = Resources.map(hop.get("inputs"));
            for (int i = 1; i < ins.size(); i++) {
                assertTensor(where + " " + ins.get(i).name, tensor(recorded.get(ins.get(i).name), ins.get(i)), inputs[i]);
            }
            calls++;
            Map<String, Object> outs = Resources.map(hop.get("outputs"));
            List<TensorSpec> outSpecs = spec.outputs();
            List<String> roles = outputRoles(spec);
            TensorData[] result = new TensorData[outSpecs.size()];
            for (int i = 0; i < result.length; i++) {
                result[i] = tensor(outs.get(roles.get(i)), outSpecs.get(i));
            }
            return result;
        }
    }

    /**
     * The stub interpreter of make_golden.py ({@code stub_frame}), the same float64 arithmetic in the
     * same order: Python and Java must compute the recorded outputs bit for bit.
     */
    static final class StubFrameModel implements Model {
        final StreamingSpec spec;
        final double[][] w;
        final double[] b;
        final double[][] v;
        final double[] a;
        final double clamp;

        StubFrameModel(StreamingSpec spec, Map<String, Object> stub) {
            this.spec = spec;
            this.w = matrix(stub.get("W"));
            this.b = Resources.doubles(stub.get("B"));
            this.v = matrix(stub.get("V"));
            this.a = Resources.doubles(stub.get("A"));
            this.clamp = ((Number) stub.get("h_clamp")).doubleValue();
        }

        static double[][] matrix(Object o) {
            List<Object> rows = Resources.list(o);
            double[][] m = new double[rows.size()][];
            for (int i = 0; i < m.length; i++) {
                m[i] = Resources.doubles(rows.get(i));
            }
            return m;
        }

        static double[] real(TensorData t, TensorSpec spec) {
            double[] out = new double[t.length()];
            for (int i = 0; i < out.length; i++) {
                out[i] = t.isInt8() ? ((double) t.bytes[i] - spec.quantization.zeroPoint) * spec.quantization.scale
                        : (double) t.floats[i];
            }
            return out;
        }

        static TensorData encode(double[] values, TensorSpec spec) {
            if (spec.isInt8()) {
                byte[] q = new byte[values.length];
                for (int i = 0; i < q.length; i++) {
                    double r = InputConverter.roundHalfAway(values[i] / spec.quantization.scale) + spec.quantization.zeroPoint;
                    q[i] = (byte) (int) Math.max(-128, Math.min(127, r));
                }
                return TensorData.ofInt8(q);
            }
            float[] f = new float[values.length];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) values[i];
            }
            return TensorData.ofFloats(f);
        }

        @Override
        public TensorData run(TensorData input) {
            throw new AssertionError("a streaming file must run through runFrame");
        }

        @Override
        public TensorData[] runFrame(TensorData[] inputs) {
            List<TensorSpec> ins = spec.inputs();
            List<TensorSpec> outs = spec.outputs();
            double[] audio = real(inputs[0], ins.get(0));
            double[] tail = real(inputs[1], ins.get(1));
            double[] buf = real(inputs[2], ins.get(2));
            double[] h = real(inputs[3], ins.get(3));
            double[] frame = new double[tail.length + audio.length];
            System.arraycopy(tail, 0, frame, 0, tail.length);
            System.arraycopy(audio, 0, frame, tail.length, audio.length);
            double n = frame.length;
            double s0 = 0, s1 = 0, s2 = 0;
            for (double x : frame) {
                s0 += x;
                s1 += Math.abs(x);
                s2 += x * x;
            }
            double[] f = {s0 / n, s1 / n, s2 / n};
            double[] c = new double[3];
            for (int j = 0; j < 3; j++) {
                c[j] = buf[j] + buf[3 + j] + f[j];
            }
            double[] h2 = new double[4];
            for (int u = 0; u < 4; u++) {
                double x = 0.5 * h[u] + ((w[u][0] * c[0] + w[u][1] * c[1]) + w[u][2] * c[2]) + b[u];
                h2[u] = Math.min(clamp, Math.max(-clamp, x));
            }
            double[] logits = new double[a.length];
            for (int k = 0; k < a.length; k++) {
                logits[k] = (((v[k][0] * h2[0] + v[k][1] * h2[1]) + v[k][2] * h2[2]) + v[k][3] * h2[3]) + a[k];
            }
            double[] tailOut = Arrays.copyOfRange(frame, spec.hopSamples, frame.length);
            double[] bufOut = {buf[3], buf[4], buf[5], f[0], f[1], f[2]};
            return new TensorData[] {encode(logits, outs.get(0)), encode(tailOut, outs.get(1)),
                    encode(bufOut, outs.get(2)), encode(h2, outs.get(3))};
        }
    }

    static StreamOptions options(Map<String, Object> c) {
        return new StreamOptions(StreamOptions.DEFAULT_HOP_MS, (int) (long) (Long) c.get("smoothing_windows"),
                ((Number) c.get("threshold")).doubleValue(), 1, false, (int) (long) (Long) c.get("suppression_ms"));
    }

    static List<HopResult> runCase(short[] pcm, Sidecar sc, Model model, Map<String, Object> c, long[] chunks) {
        long[] now = {0};
        KeywordStream stream = new KeywordStream(sc, model, options(c), () -> now[0] += 1000);
        assertEquals(sc.streaming.hopSamples, stream.hopSamples());
        List<HopResult> results = new ArrayList<>();
        int pos = 0;
        for (long n : chunks) {
            results.addAll(stream.feed(pcm, pos, (int) n));
            pos += (int) n;
        }
        assertEquals(pcm.length, pos);
        return results;
    }

    static void check(Map<String, Object> c, Sidecar sc, List<HopResult> results) {
        List<Object> hops = Resources.list(c.get("hops"));
        assertEquals(hops.size(), results.size());
        List<String> roles = outputRoles(sc.streaming);
        for (int k = 0; k < hops.size(); k++) {
            Map<String, Object> h = Resources.map(hops.get(k));
            HopResult r = results.get(k);
            String where = c.get("name") + " hop " + k;
            assertEquals(where, k, r.hopIndex);
            assertEquals(where, (long) (Long) h.get("end_sample"), r.endSample);
            assertEquals(where, (long) (k + 1) * sc.streaming.hopSamples, r.endSample);
            assertTensor(where + " logits", tensor(Resources.map(h.get("outputs")).get(roles.get(0)), sc.output), r.rawOutput);
            assertEquals(where, 2 + sc.streaming.states.size(), r.frameInputs.length);
            assertTensor(where + " audio", r.frameInputs[0], r.modelInput);
            assertArrayEquals(where + " posteriors", Resources.doubles(h.get("posteriors")), r.posteriors, TOL);
            assertArrayEquals(where + " smoothed", Resources.doubles(h.get("smoothed")), r.smoothed, TOL);
            assertEquals(where, (long) (Long) h.get("label_index"), r.decision.index);
            assertEquals(where, h.get("label"), r.decision.label);
            assertEquals(where, ((Number) h.get("confidence")).doubleValue(), r.decision.confidence, TOL);
            assertEquals(where, h.get("detected"), r.decision.detected);
            assertEquals(where + " announced", h.get("announced"), r.announced);
            assertEquals(where + " latency from the fake clock", 1000L, r.latencyNanos);
        }
    }

    private static long[] ones(int n) {
        long[] out = new long[n];
        Arrays.fill(out, 1);
        return out;
    }

    @Test
    public void everyStreamingCaseMatchesPython() throws Exception {
        Map<String, Object> g = golden();
        List<Object> cases = Resources.list(g.get("cases"));
        assertEquals("float and int8 streaming cases", 2, cases.size());
        short[] pcm = pcm(g);
        long[][] chunkings = {Resources.longs(g.get("chunks")), {pcm.length}, ones(pcm.length), {400, 400, 400, 400,
                400, 400, 400, 400, 400, 400, 400, 400}, {159, 1, 161, 319, 4160}};
        for (Object o : cases) {
            Map<String, Object> c = Resources.map(o);
            Sidecar sc = sidecar(c);
            assertTrue(sc.isStreaming());
            for (long[] chunks : chunkings) {
                ReplayFrameModel model = new ReplayFrameModel(c, sc.streaming);
                check(c, sc, runCase(pcm, sc, model, c, chunks));
                assertEquals(Resources.list(c.get("hops")).size(), model.calls);
            }
        }
    }

    @Test
    public void stubInterpreterIsTheRecordedFunction() throws Exception {
        Map<String, Object> g = golden();
        Map<String, Object> stub = Resources.map(g.get("stub"));
        for (Object o : Resources.list(g.get("cases"))) {
            Map<String, Object> c = Resources.map(o);
            Sidecar sc = sidecar(c);
            StubFrameModel model = new StubFrameModel(sc.streaming, stub);
            // the Java stub computes the recorded outputs from the recorded inputs, bit for bit ...
            List<TensorSpec> ins = sc.streaming.inputs();
            List<TensorSpec> outs = sc.streaming.outputs();
            List<String> roles = outputRoles(sc.streaming);
            for (Object ho : Resources.list(c.get("hops"))) {
                Map<String, Object> h = Resources.map(ho);
                int end = (int) (long) (Long) h.get("end_sample");
                TensorData[] in = new TensorData[ins.size()];
                in[0] = tensor(Resources.list(c.get("audio_input")).subList(end - sc.streaming.hopSamples, end), ins.get(0));
                for (int i = 1; i < in.length; i++) {
                    in[i] = tensor(Resources.map(h.get("inputs")).get(ins.get(i).name), ins.get(i));
                }
                TensorData[] got = model.runFrame(in);
                for (int i = 0; i < got.length; i++) {
                    assertTensor(c.get("name") + " stub output " + roles.get(i) + " at " + end,
                            tensor(Resources.map(h.get("outputs")).get(roles.get(i)), outs.get(i)), got[i]);
                }
            }
            // ... so the stream driven by the Java stub itself (no replay) ends where Python's did
            check(c, sc, runCase(pcm(g), sc, model, c, Resources.longs(g.get("chunks"))));
        }
    }

    @Test
    public void goldenExercisesCarryWarmupRequantizationAndAnnouncing() throws Exception {
        Map<String, Object> g = golden();
        boolean sawInt8 = false, sawFloat = false, sawRequant = false, sawClamp = false;
        for (Object o : Resources.list(g.get("cases"))) {
            Map<String, Object> c = Resources.map(o);
            Sidecar sc = sidecar(c);
            StreamingSpec spec = sc.streaming;
            assertEquals(2, spec.warmupFrames);
            StreamingSpec.State h = spec.states.get(1);
            assertEquals("state_h", h.name);
            assertTrue(h.recurrent);
            assertFalse(spec.states.get(0).recurrent);
            List<Object> hops = Resources.list(c.get("hops"));
            boolean int8 = spec.audio.isInt8();
            sawInt8 |= int8;
            sawFloat |= !int8;
            int detected = 0, announced = 0;
            for (int k = 0; k < hops.size(); k++) {
                Map<String, Object> hop = Resources.map(hops.get(k));
                TensorData hIn = tensor(Resources.map(hop.get("inputs")).get("state_h"), h.input);
                TensorData zero = StreamingState.toInput(new float[h.input.size()], h.input);
                if (k <= spec.warmupFrames) { // zeros at the start, then held at zero after calls 1 and 2
                    assertTensor("state_h at call " + k, zero, hIn);
                } else if (k == spec.warmupFrames + 1) { // the first state_h carried from an output
                    assertFalse("state_h carried into call " + k, Arrays.equals(values(zero), values(hIn)));
                }
                if (k > 0) {
                    Map<String, Object> prevOut = Resources.map(Resources.map(hops.get(k - 1)).get("outputs"));
                    TensorData prevTail = tensor(prevOut.get("tail_out"), spec.tailOut);
                    TensorData tailIn = tensor(Resources.map(hop.get("inputs")).get("tail"), spec.tail);
                    assertTensor("tail carried into call " + k, StreamingState.toInput(
                            StreamingState.carriedValue(prevTail, spec.tailOut), spec.tail), tailIn);
                    if (int8) {
                        TensorData prevBuf = tensor(prevOut.get("conv0_buffer_out"), spec.states.get(0).output);
                        TensorData bufIn = tensor(Resources.map(hop.get("inputs")).get("conv0_buffer"), spec.states.get(0).input);
                        sawRequant |= !Arrays.equals(prevBuf.bytes, bufIn.bytes);
                        for (byte b : hIn.bytes) {
                            sawClamp |= b == 127 || b == -128;
                        }
                    }
                }
                detected += (Boolean) hop.get("detected") ? 1 : 0;
                announced += (Boolean) hop.get("announced") ? 1 : 0;
            }
            assertTrue(c.get("name") + ": detections and announcements", detected > announced && announced >= 2);
            assertNotEquals(detected, hops.size());
        }
        assertTrue(sawInt8 && sawFloat && sawRequant && sawClamp);
    }

    @Test
    public void announcerIsDetectionEvents() throws Exception {
        List<Object> seqs = Resources.list(golden().get("announcer"));
        assertTrue(seqs.size() >= 4);
        int fired = 0;
        for (Object o : seqs) {
            Map<String, Object> s = Resources.map(o);
            double[] times = Resources.doubles(s.get("times_s"));
            long[] idx = Resources.longs(s.get("index"));
            List<Object> det = Resources.list(s.get("detected"));
            int[] index = new int[idx.length];
            boolean[] detected = new boolean[idx.length];
            for (int i = 0; i < index.length; i++) {
                index[i] = (int) idx[i];
                detected[i] = (Boolean) det.get(i);
            }
            long[] want = Resources.longs(s.get("fired"));
            int[] got = Announcer.detectionEvents(times, index, detected, ((Number) s.get("suppression_s")).doubleValue());
            assertEquals(want.length, got.length);
            for (int i = 0; i < got.length; i++) {
                assertEquals(want[i], got[i]);
            }
            fired += got.length;
        }
        assertTrue(fired > 20);
    }
}
