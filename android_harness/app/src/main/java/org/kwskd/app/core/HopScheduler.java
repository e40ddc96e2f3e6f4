package org.kwskd.app.core;

/**
 * When to run the model: first as soon as a full window has been recorded, then
 * every {@code hop} samples, i.e. after {@code window + k * hop} samples.
 *
 * <p>Counting samples rather than wall-clock time makes the schedule exact and
 * testable, and immune to AudioRecord delivering reads of uneven size.
 */
public final class HopScheduler {
    private final int hop;
    private long nextDue;

    public HopScheduler(int window, int hop) {
        if (window <= 0 || hop <= 0) {
            throw new IllegalArgumentException("window and hop must be positive");
        }
        this.hop = hop;
        this.nextDue = window;
    }

    /** Hop length in samples for a hop in milliseconds, rounded half up, at least 1. */
    public static int hopSamples(int hopMs, int sampleRate) {
        if (hopMs <= 0) {
            throw new IllegalArgumentException("hop must be a positive number of milliseconds, got " + hopMs);
        }
        return (int) Math.max(1L, ((long) hopMs * sampleRate + 500) / 1000);
    }

    public int hop() {
        return hop;
    }

    public long samplesUntilDue(long totalWritten) {
        return nextDue - totalWritten;
    }

    public boolean isDue(long totalWritten) {
        return totalWritten == nextDue;
    }

    public void advance() {
        nextDue += hop;
    }
}
