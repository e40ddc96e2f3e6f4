package org.kwskd.app.core;

import java.util.ArrayDeque;
import java.util.Iterator;

/**
 * Mean of the last N posterior vectors (fewer until N have been seen).
 *
 * <p>One window can flicker when a keyword straddles its edge; averaging a few
 * overlapping windows (N=3 at a 250 ms hop spans 0.75 s) steadies the display.
 * Sums run oldest first, exactly like kws_kd.app_logic.PosteriorSmoother.
 */
public final class PosteriorSmoother {
    private final int windows;
    private final ArrayDeque<double[]> history = new ArrayDeque<>();

    public PosteriorSmoother(int windows) {
        if (windows <= 0) {
            throw new IllegalArgumentException("smoothing window count must be positive, got " + windows);
        }
        this.windows = windows;
    }

    public double[] push(double[] posteriors) {
        history.addLast(posteriors.clone());
        if (history.size() > windows) {
            history.removeFirst();
        }
        double[] total = new double[posteriors.length];
        Iterator<double[]> it = history.iterator();
        while (it.hasNext()) {
            double[] h = it.next();
            for (int i = 0; i < total.length; i++) {
                total[i] = total[i] + h[i];
            }
        }
        for (int i = 0; i < total.length; i++) {
            total[i] = total[i] / history.size();
        }
        return total;
    }

    public void reset() {
        history.clear();
    }
}
