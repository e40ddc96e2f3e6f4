package org.kwskd.app.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Microphone PCM in, one {@link HopResult} per hop out: ring buffer, hop scheduler,
 * input conversion, the model, posteriors, smoothing and label decoding.
 *
 * <p>Chunks may have any size; a chunk that crosses a hop boundary is split there,
 * so results do not depend on how AudioRecord happens to deliver the samples.
 * Mirrors {@code kws_kd.app_logic.KeywordStream}. Not thread-safe: feed it from the
 * audio thread only.
 */
public final class KeywordStream {
    /** Source of monotonic nanoseconds (System::nanoTime in the app, a fake in tests). */
    public interface Clock {
        long nanos();
    }

    private final Sidecar sidecar;
    private final Model model;
    private final double threshold;
    private final RingBuffer ring;
    private final HopScheduler scheduler;
    private final PosteriorSmoother smoother;
    private final Clock clock;
    private final short[] window;
    private final byte[] int8Table; // null for float input
    private int hops;

    public KeywordStream(Sidecar sidecar, Model model, StreamOptions options, Clock clock) {
        this.sidecar = sidecar;
        this.model = model;
        this.threshold = options.threshold;
        this.ring = new RingBuffer(sidecar.inputSamples);
        this.scheduler = new HopScheduler(sidecar.inputSamples, HopScheduler.hopSamples(options.hopMs, sidecar.sampleRate));
        this.smoother = new PosteriorSmoother(options.smoothingWindows);
        this.clock = clock;
        this.window = new short[sidecar.inputSamples];
        this.int8Table = sidecar.input.isInt8() ? InputConverter.int8Table(sidecar.input.quantization) : null;
    }

    public List<HopResult> feed(short[] chunk, int offset, int length) {
        List<HopResult> results = new ArrayList<>();
        int end = offset + length;
        while (offset < end) {
            long until = scheduler.samplesUntilDue(ring.totalWritten());
            int take = (int) Math.min(end - offset, until);
            ring.write(chunk, offset, take);
            offset += take;
            if (scheduler.isDue(ring.totalWritten())) {
                results.add(infer());
                scheduler.advance();
            }
        }
        return results;
    }

    public List<HopResult> feed(short[] chunk) {
        return feed(chunk, 0, chunk.length);
    }

    private HopResult infer() {
        ring.snapshot(window);
        TensorData input = int8Table != null
                ? InputConverter.convertWithTable(window, int8Table)
                : InputConverter.convert(window, sidecar.input);
        long t0 = clock.nanos();
        TensorData raw = model.run(input);
        long latency = clock.nanos() - t0;
        if (raw.length() != sidecar.output.size()) {
            throw new IllegalStateException("model returned " + raw.length() + " values, sidecar expects " + sidecar.output.size());
        }
        double[] p = Posteriors.fromOutput(raw, sidecar);
        double[] s = smoother.push(p);
        Decision d = Decision.decode(s, sidecar.labels, threshold);
        return new HopResult(hops++, ring.totalWritten(), input, raw, p, s, d, latency);
    }
}
