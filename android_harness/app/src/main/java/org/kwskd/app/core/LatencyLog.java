package org.kwskd.app.core;

import java.util.Locale;

/**
 * The one log line per inference that android_harness/harness.py collects over
 * {@code adb logcat -s KwsKdLatency}. Keep the format stable: the harness parses
 * {@code key=value} pairs and needs at least {@code latency_us}.
 *
 * <pre>hop=12 latency_us=1834 label=yes confidence=0.9123 detected=true delegate=xnnpack announced=true</pre>
 *
 * <p>{@code announced} (added with streaming support) is last, so older parsers keep working.
 */
public final class LatencyLog {
    public static final String TAG = "KwsKdLatency";

    private LatencyLog() {
    }

    public static String format(HopResult r, String delegate) {
        return String.format(Locale.ROOT, "hop=%d latency_us=%d label=%s confidence=%.4f detected=%b delegate=%s announced=%b",
                r.hopIndex, r.latencyNanos / 1000, token(r.decision.label), r.decision.confidence,
                r.decision.detected, token(delegate), r.announced);
    }

    /** Whitespace would break key=value parsing: replace it. */
    static String token(String s) {
        return s.isEmpty() ? "-" : s.replaceAll("\\s+", "_");
    }
}
