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
        assertEquals("hop=12 latency_us=1834 label=turn_on confidence=0.9123 detected=true delegate=xnnpack",
                LatencyLog.format(r, "xnnpack"));
        assertEquals("KwsKdLatency", LatencyLog.TAG);
    }
}
