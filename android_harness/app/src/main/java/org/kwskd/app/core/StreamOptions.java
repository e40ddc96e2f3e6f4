package org.kwskd.app.core;

/**
 * User-settable knobs (intent extras in the app), validated in one place.
 * Defaults: 250 ms hop, 3 smoothed windows, 0.5 threshold, 1 thread, XNNPACK (no GPU),
 * 500 ms announcement suppression.
 *
 * <p>A streaming file runs once per hop of its own ({@code streaming.hop_samples}, 20 ms for
 * kws-kd exports): {@link #hopMs} is ignored for it, and {@link #smoothingWindows} counts
 * those calls (25 = 500 ms).
 */
public final class StreamOptions {
    public static final int DEFAULT_HOP_MS = 250;
    public static final int DEFAULT_SMOOTHING_WINDOWS = 3;
    public static final double DEFAULT_THRESHOLD = 0.5;
    public static final int DEFAULT_THREADS = 1;
    public static final int DEFAULT_SUPPRESSION_MS = 500;

    public final int hopMs;
    public final int smoothingWindows;
    public final double threshold;
    public final int threads;
    public final boolean useGpu;
    /** At most one announcement per this many ms ({@link Announcer}). */
    public final int suppressionMs;

    public StreamOptions(int hopMs, int smoothingWindows, double threshold, int threads, boolean useGpu) {
        this(hopMs, smoothingWindows, threshold, threads, useGpu, DEFAULT_SUPPRESSION_MS);
    }

    public StreamOptions(int hopMs, int smoothingWindows, double threshold, int threads, boolean useGpu,
                         int suppressionMs) {
        if (hopMs <= 0 || hopMs > 60000) {
            throw new IllegalArgumentException("hop_ms must be in 1..60000, got " + hopMs);
        }
        if (smoothingWindows <= 0 || smoothingWindows > 100) {
            throw new IllegalArgumentException("smoothing must be in 1..100 windows, got " + smoothingWindows);
        }
        if (!(threshold >= 0 && threshold <= 1)) {
            throw new IllegalArgumentException("threshold must be in [0, 1], got " + threshold);
        }
        if (threads <= 0 || threads > 64) {
            throw new IllegalArgumentException("threads must be in 1..64, got " + threads);
        }
        if (suppressionMs < 0 || suppressionMs > 60000) {
            throw new IllegalArgumentException("suppression_ms must be in 0..60000, got " + suppressionMs);
        }
        this.hopMs = hopMs;
        this.smoothingWindows = smoothingWindows;
        this.threshold = threshold;
        this.threads = threads;
        this.useGpu = useGpu;
        this.suppressionMs = suppressionMs;
    }

    public static StreamOptions defaults() {
        return new StreamOptions(DEFAULT_HOP_MS, DEFAULT_SMOOTHING_WINDOWS, DEFAULT_THRESHOLD, DEFAULT_THREADS, false);
    }
}
