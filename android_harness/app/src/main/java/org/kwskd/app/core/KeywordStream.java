package org.kwskd.app.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Microphone PCM in, one {@link HopResult} per hop out: ring buffer, hop scheduler,
 * input conversion, the model, posteriors, smoothing, label decoding and announcing.
 *
 * <p>Chunks may have any size; a chunk that crosses a hop boundary is split there,
 * so results do not depend on how AudioRecord happens to deliver the samples.
 * Mirrors {@code kws_kd.app_logic.KeywordStream}. Not thread-safe: feed it from the
 * audio thread only.
 *
 * <p>Whole-clip files: the ring holds {@code input_samples}, {@link Model#run} gets the
 * window every {@code hop_ms}. Streaming files ({@link Sidecar#streaming}): the ring holds
 * one hop of the file ({@code hop_ms} is ignored) and {@link Model#runFrame} runs once per
 * hop from the first hop on, with the tail and states a {@link StreamingState} carries
 * from the previous call (zeros at the start).
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
    private final Announcer announcer;
    private final Clock clock;
    private final short[] window;
    private final byte[] int8Table; // null for float input or a streaming file
    private final StreamingState state; // null for a whole-clip file
    private int hops;

    public KeywordStream(Sidecar sidecar, Model model, StreamOptions options, Clock clock) {
        this.sidecar = sidecar;
        this.model = model;
        this.threshold = options.threshold;
        int windowSamples;
        int hop;
        if (sidecar.streaming == null) {
            windowSamples = sidecar.inputSamples;
            hop = HopScheduler.hopSamples(options.hopMs, sidecar.sampleRate);
            this.state = null;
        } else { // the ring holds exactly the newest hop; the model carries the rest
            windowSamples = hop = sidecar.streaming.hopSamples;
            this.state = new StreamingState(sidecar.streaming);
        }
        this.ring = new RingBuffer(windowSamples);
        this.scheduler = new HopScheduler(windowSamples, hop);
        this.smoother = new PosteriorSmoother(options.smoothingWindows);
        this.announcer = new Announcer(options.suppressionMs / 1000.0);
        this.clock = clock;
        this.window = new short[windowSamples];
        this.int8Table = state == null && sidecar.input.isInt8() ? InputConverter.int8Table(sidecar.input.quantization) : null;
    }

    /** Samples per inference: the hop (streaming files: the file's own hop). */
    public int hopSamples() {
        return scheduler.hop();
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
        TensorData input;
        TensorData raw;
        TensorData[] frameIn = null;
        TensorData[] frameOut = null;
        long latency;
        if (state == null) {
            input = int8Table != null
                    ? InputConverter.convertWithTable(window, int8Table)
                    : InputConverter.convert(window, sidecar.input);
            long t0 = clock.nanos();
            raw = model.run(input);
            latency = clock.nanos() - t0;
        } else {
            frameIn = state.inputs(window);
            long t0 = clock.nanos();
            frameOut = model.runFrame(frameIn.clone());
            latency = clock.nanos() - t0;
            state.absorb(frameOut);
            input = frameIn[0];
            raw = frameOut[0];
        }
        if (raw.length() != sidecar.output.size()) {
            throw new IllegalStateException("model returned " + raw.length() + " values, sidecar expects " + sidecar.output.size());
        }
        double[] p = Posteriors.fromOutput(raw, sidecar);
        double[] s = smoother.push(p);
        Decision d = Decision.decode(s, sidecar.labels, threshold);
        long endSample = ring.totalWritten();
        boolean announced = announcer.push((double) endSample / sidecar.sampleRate, d.index, d.detected);
        return new HopResult(hops++, endSample, input, raw, p, s, d, latency, announced, frameIn, frameOut);
    }
}
