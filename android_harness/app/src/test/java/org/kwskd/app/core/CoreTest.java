package org.kwskd.app.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.Test;

/** Unit behaviour of the core classes, each against an independent computation. */
public class CoreTest {

    @Test
    public void ringBufferHoldsTheTailOfTheStream() {
        Random rng = new Random(0);
        short[] stream = new short[5000];
        for (int i = 0; i < stream.length; i++) {
            stream[i] = (short) (rng.nextInt(65536) - 32768);
        }
        RingBuffer ring = new RingBuffer(700);
        int pos = 0;
        for (int n : new int[] {3, 700, 1, 1500, 699, 97, 2000}) {
            ring.write(stream, pos, n);
            pos += n;
            short[] expect = new short[700];
            int have = Math.min(pos, 700);
            System.arraycopy(stream, pos - have, expect, 700 - have, have);
            assertArrayEquals("after " + pos + " samples", expect, ring.snapshot());
        }
        assertEquals(5000L, ring.totalWritten());
    }

    @Test
    public void hopSamplesRoundHalfUp() {
        assertEquals(4000, HopScheduler.hopSamples(250, 16000));
        assertEquals(400, HopScheduler.hopSamples(25, 16000));
        assertEquals(44, HopScheduler.hopSamples(1, 44100));
        assertEquals(132, HopScheduler.hopSamples(3, 44100));
        try {
            HopScheduler.hopSamples(0, 16000);
            fail("zero hop accepted");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("hop"));
        }
    }

    @Test
    public void schedulerFiresAtWindowPlusMultiplesOfHop() {
        HopScheduler s = new HopScheduler(1000, 300);
        StringBuilder fired = new StringBuilder();
        for (long t = 0; t <= 2500; t++) {
            if (s.isDue(t)) {
                fired.append(t).append(' ');
                s.advance();
            }
        }
        assertEquals("1000 1300 1600 1900 2200 2500 ", fired.toString());
    }

    @Test
    public void floatInputIsPcmOver32768() {
        short[] pcm = {-32768, -1, 0, 1, 16384, 32767};
        TensorSpec spec = new TensorSpec("a", new int[] {1, 6}, "float32", null, "logits");
        TensorData x = InputConverter.convert(pcm, spec);
        assertFalse(x.isInt8());
        float[] expect = {-1f, -1f / 32768, 0f, 1f / 32768, 0.5f, 32767f / 32768};
        assertArrayEquals(expect, x.floats, 0f);
    }

    @Test
    public void int8InputRoundsHalfAwayFromZeroAndClamps() {
        // scale 2^-7 makes pcm / 32768 / scale = pcm / 256: odd multiples of 128 are exact ties
        short[] pcm = {128, -128, 384, -384, 127, -129, 0, 32767, -32768};
        TensorSpec spec = new TensorSpec("a", new int[] {1, 9}, "int8", new Quantization(1.0 / 128, 3), "logits");
        TensorData q = InputConverter.convert(pcm, spec);
        assertTrue(q.isInt8());
        assertArrayEquals(new byte[] {4, 2, 5, 1, 3, 2, 3, 127, -125}, q.bytes);
        assertEquals(-128, InputConverter.quantize((short) -32768, new Quantization(1.0 / 128, -3)));
        assertEquals(125, InputConverter.quantize((short) 32767, new Quantization(1.0 / 128, -3)));
    }

    @Test
    public void int8TableEqualsDirectQuantizationForEveryInt16() {
        Quantization[] qs = {new Quantization(0.007843137718737125, -1), new Quantization(1.0 / 128, 3)};
        for (Quantization q : qs) {
            byte[] table = InputConverter.int8Table(q);
            short[] all = new short[65536];
            for (int v = -32768; v <= 32767; v++) {
                all[v + 32768] = (short) v;
                // independent check: round half away from zero written with BigDecimal
                java.math.BigDecimal x = new java.math.BigDecimal(v / 32768.0 / q.scale)
                        .setScale(0, java.math.RoundingMode.HALF_UP);
                long want = Math.max(-128, Math.min(127, x.longValue() + q.zeroPoint));
                assertEquals("pcm " + v + " scale " + q.scale, want, table[v + 32768]);
            }
            TensorSpec spec = new TensorSpec("a", new int[] {1, 65536}, "int8", q, "logits");
            assertArrayEquals(InputConverter.convert(all, spec).bytes, InputConverter.convertWithTable(all, table).bytes);
        }
    }

    @Test
    public void int8OutputDequantization() {
        TensorSpec spec = new TensorSpec("o", new int[] {1, 3}, "int8", new Quantization(0.25, -4), "logits");
        double[] v = Posteriors.dequantize(TensorData.ofInt8(new byte[] {-4, 0, 127}), spec);
        assertArrayEquals(new double[] {0.0, 1.0, 32.75}, v, 0.0);
    }

    @Test
    public void softmaxAndSigmoidMatchClosedForms() {
        double[] v = {3.0, -1.0, 0.5};
        double z = Math.exp(3.0) + Math.exp(-1.0) + Math.exp(0.5);
        assertArrayEquals(new double[] {Math.exp(3.0) / z, Math.exp(-1.0) / z, Math.exp(0.5) / z}, Posteriors.softmax(v), 1e-15);
        assertArrayEquals(new double[] {0.5, 0.5}, Posteriors.softmax(new double[] {1000, 1000}), 0.0);
        assertArrayEquals(new double[] {1 / (1 + Math.exp(-3.0)), 1 / (1 + Math.exp(1.0)), 1 / (1 + Math.exp(-0.5))},
                Posteriors.sigmoid(v), 1e-15);
    }

    @Test
    public void smootherIsRunningMeanOfLastN() {
        Random rng = new Random(1);
        double[][] vecs = new double[7][4];
        for (double[] row : vecs) {
            for (int i = 0; i < row.length; i++) {
                row[i] = rng.nextDouble();
            }
        }
        PosteriorSmoother sm = new PosteriorSmoother(3);
        for (int k = 0; k < vecs.length; k++) {
            double[] got = sm.push(vecs[k]);
            int from = Math.max(0, k - 2);
            for (int i = 0; i < 4; i++) {
                double sum = 0;
                for (int j = from; j <= k; j++) {
                    sum += vecs[j][i];
                }
                assertEquals(sum / (k - from + 1), got[i], 1e-15);
            }
        }
    }

    @Test
    public void decodeTakesFirstMaxAndSkipsFillers() {
        List<String> labels = Arrays.asList("_silence_", "yes", "no");
        Decision d = Decision.decode(new double[] {0.2, 0.4, 0.4}, labels, 0.4);
        assertEquals(1, d.index);
        assertEquals("yes", d.label);
        assertTrue(d.detected);
        assertFalse(Decision.decode(new double[] {0.2, 0.39, 0.41}, labels, 0.5).detected);
        Decision s = Decision.decode(new double[] {0.9, 0.05, 0.05}, labels, 0.5);
        assertEquals("_silence_", s.label);
        assertFalse(s.detected);
    }

    @Test
    public void optionsRejectNonsense() {
        StreamOptions d = StreamOptions.defaults();
        assertEquals(250, d.hopMs);
        assertEquals(3, d.smoothingWindows);
        assertFalse(d.useGpu);
        assertEquals(500, d.suppressionMs);
        assertEquals(0, new StreamOptions(250, 3, 0.5, 1, false, 0).suppressionMs);
        try {
            new StreamOptions(250, 3, 0.5, 1, false, -1);
            fail("accepted a negative suppression");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("suppression_ms"));
        }
        int[][] bad = {{0, 3, 1}, {250, 0, 1}, {250, 3, 0}};
        for (int[] b : bad) {
            try {
                new StreamOptions(b[0], b[1], 0.5, b[2], false);
                fail("accepted " + Arrays.toString(b));
            } catch (IllegalArgumentException expected) {
                // good
            }
        }
        try {
            new StreamOptions(250, 3, 1.5, 1, false);
            fail("accepted threshold 1.5");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("threshold"));
        }
    }

    @Test
    public void latencyLineHasTheFieldsTheHarnessParses() {
        HopResult r = new HopResult(12, 20000, null, null, null, null,
                new Decision(2, "turn on", 0.91234, true), 1834567);
        assertEquals("hop=12 latency_us=1834 label=turn_on confidence=0.9123 detected=true delegate=xnnpack announced=false",
                LatencyLog.format(r, "xnnpack"));
        HopResult a = new HopResult(3, 960, null, null, null, null, new Decision(1, "yes", 0.8, true), 2000, true, null, null);
        assertTrue(LatencyLog.format(a, "gpu").endsWith(" delegate=gpu announced=true"));
        assertEquals("KwsKdLatency", LatencyLog.TAG);
    }

    @Test
    public void announcerFiresOncePerOnsetOutsideTheSuppressionTime() {
        Announcer a = new Announcer(0.5);
        // t, index, detected -> fires
        Object[][] steps = {
            {0.1, 2, false, false}, {0.2, 2, true, true}, {0.3, 2, true, false}, // onset, then held
            {0.4, 3, true, false}, // another label's onset 0.2 s later: suppressed, and dropped for good
            {0.5, 3, true, false}, {0.8, 3, true, false}, // still held: never fires late
            {0.9, 3, false, false}, {1.0, 3, true, true}, // a new onset 0.8 s after the last announcement
            {1.1, 2, true, false}, {1.5, 2, false, false}, {1.6, 1, true, true}};
        for (Object[] st : steps) {
            assertEquals("t=" + st[0], st[3], a.push((Double) st[0], (Integer) st[1], (Boolean) st[2]));
        }
        // exactly the suppression time apart fires (1e-9 tolerance for hop times like 0.1 * k)
        Announcer b = new Announcer(0.3);
        assertTrue(b.push(0.1, 1, true));
        assertFalse(b.push(0.2, 1, false));
        assertTrue(b.push(0.1 * 4, 1, true)); // 0.4 - 0.1 = 0.30000000000000004 >= 0.3 - 1e-9
        assertArrayEquals(new int[] {0, 2}, Announcer.detectionEvents(new double[] {0.1, 0.2, 0.4}, new int[] {1, 1, 1},
                new boolean[] {true, false, true}, 0.3));
        assertArrayEquals(new int[] {0, 2}, Announcer.detectionEvents(new double[] {1, 2, 3}, new int[] {1, 2, 1},
                new boolean[] {true, false, true}, 0));
        try {
            new Announcer(-1);
            fail("negative suppression accepted");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("suppression"));
        }
    }

    private static final String STREAM_JSON = "{\"format\": \"kws-kd-tflite\", \"version\": 1, \"labels\": [\"_silence_\", \"yes\"],"
            + " \"sample_rate\": 1000, \"input_samples\": 0,"
            + " \"input\": {\"name\": \"audio\", \"shape\": [1, 2], \"dtype\": \"float32\"},"
            + " \"output\": {\"name\": \"output_0\", \"shape\": [1, 2], \"dtype\": \"float32\", \"kind\": \"logits\"},"
            + " \"streaming\": {\"hop_samples\": 2, \"window_samples\": 3, \"states\": {\"c\": [2], \"h\": [1]},"
            + " \"warmup_frames\": 1, \"recurrent\": [\"h\"], \"tensors\": {"
            + " \"inputs\": {\"audio\": {\"shape\": [1, 2], \"dtype\": \"float32\"}, \"tail\": {\"shape\": [1, 1], \"dtype\": \"float32\"},"
            + " \"c\": {\"shape\": [1, 2], \"dtype\": \"int8\", \"quantization\": {\"scale\": 0.1, \"zero_point\": 5}},"
            + " \"h\": {\"shape\": [1, 1], \"dtype\": \"float32\"}},"
            + " \"outputs\": {\"logits\": {\"name\": \"output_0\", \"shape\": [1, 2], \"dtype\": \"float32\"},"
            + " \"tail_out\": {\"name\": \"output_1\", \"shape\": [1, 1], \"dtype\": \"float32\"},"
            + " \"c_out\": {\"name\": \"output_2\", \"shape\": [1, 2], \"dtype\": \"int8\", \"quantization\": {\"scale\": 0.25, \"zero_point\": -3}},"
            + " \"h_out\": {\"name\": \"output_3\", \"shape\": [1, 1], \"dtype\": \"float32\"}}}}}";

    @Test
    public void streamingStateCarriesOutputsToInputsAndHoldsRecurrentStatesDuringWarmup() throws Exception {
        Sidecar sc = Sidecar.parse(STREAM_JSON, "s.json");
        StreamingState st = new StreamingState(sc.streaming);
        TensorData[] in = st.inputs(new short[] {16384, -32768});
        assertArrayEquals(new float[] {0.5f, -1f}, in[0].floats, 0f);
        assertArrayEquals(new float[] {0f}, in[1].floats, 0f); // zero tail at the start
        assertArrayEquals(new byte[] {5, 5}, in[2].bytes); // int8 zero is the zero point
        assertArrayEquals(new float[] {0f}, in[3].floats, 0f);
        // call 1 (inside the warm-up): c is carried, h is held at zero
        st.absorb(new TensorData[] {TensorData.ofFloats(new float[] {1, 2}), TensorData.ofFloats(new float[] {-1f}),
                TensorData.ofInt8(new byte[] {-3 + 7, 127}), TensorData.ofFloats(new float[] {0.75f})});
        assertEquals(1, st.calls());
        assertArrayEquals(new float[] {-1f}, st.tail(), 0f);
        assertArrayEquals(new float[] {1.75f, 32.5f}, st.state(0), 0f); // (q - (-3)) * 0.25 in float
        assertArrayEquals(new float[] {0f}, st.state(1), 0f);
        in = st.inputs(new short[] {0, 1});
        assertArrayEquals(new float[] {-1f}, in[1].floats, 0f);
        // 1.75 / 0.1 = 17.5 -> 18 (half away from zero) + 5; 32.5 / 0.1 + 5 clamps at 127
        assertArrayEquals(new byte[] {23, 127}, in[2].bytes);
        // call 2 (after the warm-up): h is carried
        st.absorb(new TensorData[] {TensorData.ofFloats(new float[] {1, 2}), TensorData.ofFloats(new float[] {0.5f}),
                TensorData.ofInt8(new byte[] {-128, -3}), TensorData.ofFloats(new float[] {0.75f})});
        assertArrayEquals(new float[] {0.75f}, st.state(1), 0f);
        in = st.inputs(new short[] {0, 1});
        assertArrayEquals(new byte[] {-128, 5}, in[2].bytes); // (-125 * 0.25) / 0.1 + 5 = -307.5 clamps
        assertArrayEquals(new float[] {0.75f}, in[3].floats, 0f);
        st.reset();
        assertEquals(0, st.calls());
        assertArrayEquals(new byte[] {5, 5}, st.inputs(new short[] {0, 0})[2].bytes);
        try {
            st.absorb(new TensorData[] {TensorData.ofFloats(new float[] {1, 2})});
            fail("accepted one output tensor");
        } catch (IllegalStateException expected) {
            assertTrue(expected.getMessage().contains("expects 4"));
        }
    }

    @Test
    public void int8CarryIsFloat32DequantizeThenDoubleRequantize() {
        // independent arithmetic: BigDecimal on the float32 product, half-up rounding of |x| (away from zero)
        TensorSpec out = new TensorSpec("o", new int[] {1, 256}, "int8", new Quantization(0.006639713887125254, 73), "logits");
        TensorSpec in = new TensorSpec("i", new int[] {1, 256}, "int8", new Quantization(0.00661920290440321, 73), "logits");
        byte[] q = new byte[256];
        for (int i = 0; i < 256; i++) {
            q[i] = (byte) (i - 128);
        }
        float[] v = StreamingState.carriedValue(TensorData.ofInt8(q), out);
        byte[] back = StreamingState.toInput(v, in).bytes;
        for (int i = 0; i < 256; i++) {
            float want = (float) (q[i] - 73) * (float) out.quantization.scale;
            assertEquals(want, v[i], 0f);
            java.math.BigDecimal x = new java.math.BigDecimal((double) v[i] / in.quantization.scale)
                    .setScale(0, java.math.RoundingMode.HALF_UP);
            assertEquals(Math.max(-128, Math.min(127, x.longValue() + 73)), back[i]);
        }
    }

    @Test
    public void wholeClipModelCannotRunAStreamingFile() throws Exception {
        Sidecar sc = Sidecar.parse(STREAM_JSON, "s.json");
        KeywordStream stream = new KeywordStream(sc, x -> x, StreamOptions.defaults(), () -> 0);
        assertEquals(2, stream.hopSamples());
        assertEquals(0, stream.feed(new short[] {1}).size());
        try {
            stream.feed(new short[] {1});
            fail("ran a streaming file through Model.run");
        } catch (UnsupportedOperationException expected) {
            assertTrue(expected.getMessage().contains("streaming"));
        }
    }
}
