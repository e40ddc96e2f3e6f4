package org.kwskd.app.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * The golden file written by android_harness/make_golden.py (Python: kws_kd.app_logic
 * driving the real tiny LiteRT models). A replay model checks every input tensor the
 * Java stream builds against the recorded stream tensor and answers with the recorded
 * model output; every posterior, smoothed posterior and label must then match.
 */
public class GoldenTest {
    private static final double TOL = 1e-9;

    private static Map<String, Object> golden() throws Exception {
        return Resources.map(Json.parse(Resources.text("/golden/app_logic_golden.json")));
    }

    private static short[] pcm(Map<String, Object> g) {
        long[] v = Resources.longs(g.get("pcm"));
        short[] out = new short[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = (short) v[i];
        }
        return out;
    }

    /** Checks the input against the stream tensor's window and returns the recorded output. */
    private static final class ReplayModel implements Model {
        final Map<String, Object> c;
        final List<Object> hops;
        final int window;
        final boolean outputInt8;
        int calls;

        ReplayModel(Map<String, Object> c, int window, boolean outputInt8) {
            this.c = c;
            this.hops = Resources.list(c.get("hops"));
            this.window = window;
            this.outputInt8 = outputInt8;
        }

        @Override
        public TensorData run(TensorData input) {
            Map<String, Object> hop = Resources.map(hops.get(calls));
            int end = (int) (long) (Long) hop.get("end_sample");
            List<Object> stream = Resources.list(c.get("input"));
            assertEquals(window, input.length());
            boolean int8 = "int8".equals(c.get("input_dtype"));
            assertEquals(int8, input.isInt8());
            for (int i = 0; i < window; i++) {
                Number want = (Number) stream.get(end - window + i);
                if (int8) {
                    assertEquals("int8 input at hop " + calls + " index " + i, want.longValue(), input.bytes[i]);
                } else {
                    // pcm / 32768 is exact in float32, so demand bit equality
                    assertEquals("float input at hop " + calls + " index " + i, (float) want.doubleValue(), input.floats[i], 0f);
                }
            }
            calls++;
            List<Object> raw = Resources.list(hop.get("raw_output"));
            if (outputInt8) {
                byte[] b = new byte[raw.size()];
                for (int i = 0; i < b.length; i++) {
                    b[i] = (byte) (long) (Long) raw.get(i);
                }
                return TensorData.ofInt8(b);
            }
            float[] f = new float[raw.size()];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) ((Number) raw.get(i)).doubleValue();
            }
            return TensorData.ofFloats(f);
        }
    }

    private static List<HopResult> runCase(Map<String, Object> g, Map<String, Object> c, long[] chunks) throws Exception {
        String name = (String) c.get("sidecar");
        Sidecar sc = Sidecar.parse(Resources.text("/golden/" + name), name);
        ReplayModel model = new ReplayModel(c, sc.inputSamples, sc.output.isInt8());
        StreamOptions opts = new StreamOptions((int) (long) (Long) c.get("hop_ms"),
                (int) (long) (Long) c.get("smoothing_windows"), ((Number) c.get("threshold")).doubleValue(), 1, false,
                (int) (long) (Long) c.get("suppression_ms"));
        long[] now = {0};
        KeywordStream stream = new KeywordStream(sc, model, opts, () -> now[0] += 1000);
        short[] pcm = pcm(g);
        List<HopResult> results = new ArrayList<>();
        int pos = 0;
        for (long n : chunks) {
            results.addAll(stream.feed(pcm, pos, (int) n));
            pos += (int) n;
        }
        assertEquals(pcm.length, pos);
        assertEquals(Resources.list(c.get("hops")).size(), model.calls);
        return results;
    }

    private static void check(Map<String, Object> c, List<HopResult> results) {
        List<Object> hops = Resources.list(c.get("hops"));
        assertEquals(hops.size(), results.size());
        for (int k = 0; k < hops.size(); k++) {
            Map<String, Object> h = Resources.map(hops.get(k));
            HopResult r = results.get(k);
            String where = c.get("name") + " hop " + k;
            assertEquals(where, k, r.hopIndex);
            assertEquals(where, (long) (Long) h.get("end_sample"), r.endSample);
            assertArrayEquals(where + " posteriors", Resources.doubles(h.get("posteriors")), r.posteriors, TOL);
            assertArrayEquals(where + " smoothed", Resources.doubles(h.get("smoothed")), r.smoothed, TOL);
            assertEquals(where, (long) (Long) h.get("label_index"), r.decision.index);
            assertEquals(where, h.get("label"), r.decision.label);
            assertEquals(where, ((Number) h.get("confidence")).doubleValue(), r.decision.confidence, TOL);
            assertEquals(where, h.get("detected"), r.decision.detected);
            assertEquals(where + " announced", h.get("announced"), r.announced);
            assertNull(where + " whole-clip: no frame tensors", r.frameInputs);
            assertEquals(where + " latency from the fake clock", 1000L, r.latencyNanos);
        }
    }

    @Test
    public void everyCaseMatchesPython() throws Exception {
        Map<String, Object> g = golden();
        List<Object> cases = Resources.list(g.get("cases"));
        assertTrue("golden file has the float, int8 and multi-label cases", cases.size() >= 3);
        long[] chunks = Resources.longs(g.get("chunks"));
        for (Object o : cases) {
            Map<String, Object> c = Resources.map(o);
            check(c, runCase(g, c, chunks));
        }
    }

    @Test
    public void resultsDoNotDependOnChunking() throws Exception {
        Map<String, Object> g = golden();
        int total = pcm(g).length;
        long[][] chunkings = {{total}, ones(total), {400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400}};
        for (Object o : Resources.list(g.get("cases"))) {
            Map<String, Object> c = Resources.map(o);
            for (long[] chunks : chunkings) {
                check(c, runCase(g, c, chunks));
            }
        }
    }

    private static long[] ones(int n) {
        long[] out = new long[n];
        java.util.Arrays.fill(out, 1);
        return out;
    }

    @Test
    public void goldenExercisesTheInterestingPaths() throws Exception {
        Map<String, Object> g = golden();
        short[] pcm = pcm(g);
        short min = Short.MAX_VALUE, max = Short.MIN_VALUE;
        for (short s : pcm) {
            min = (short) Math.min(min, s);
            max = (short) Math.max(max, s);
        }
        assertEquals(Short.MIN_VALUE, min);
        assertEquals(Short.MAX_VALUE, max);
        boolean sawInt8 = false, sawMulti = false, sawDetected = false, sawNotDetected = false;
        for (Object o : Resources.list(g.get("cases"))) {
            Map<String, Object> c = Resources.map(o);
            String name = (String) c.get("sidecar");
            Sidecar sc = Sidecar.parse(Resources.text("/golden/" + name), name);
            sawInt8 |= sc.input.isInt8() && sc.output.isInt8();
            sawMulti |= sc.multiLabel;
            for (Object h : Resources.list(c.get("hops"))) {
                boolean d = (Boolean) Resources.map(h).get("detected");
                sawDetected |= d;
                sawNotDetected |= !d;
            }
        }
        assertTrue(sawInt8 && sawMulti && sawDetected && sawNotDetected);
        for (Object o : Resources.list(g.get("cases"))) { // every case announces its first detection
            boolean announced = false;
            for (Object h : Resources.list(Resources.map(o).get("hops"))) {
                announced |= (Boolean) Resources.map(h).get("announced");
            }
            assertTrue(announced);
        }
    }
}
