package org.kwskd.app.core;

import java.util.List;

/** The decoded top label of one hop. */
public final class Decision {
    public final int index;
    public final String label;
    public final double confidence;
    /** True when the confidence reaches the threshold and the label is a real keyword. */
    public final boolean detected;

    public Decision(int index, String label, double confidence, boolean detected) {
        this.index = index;
        this.label = label;
        this.confidence = confidence;
        this.detected = detected;
    }

    /** Labels such as _silence_ and _unknown_ are never announced as keywords. */
    public static boolean isFiller(String label) {
        return label.startsWith("_");
    }

    /** First index of the maximum smoothed posterior. */
    public static Decision decode(double[] smoothed, List<String> labels, double threshold) {
        int best = 0;
        for (int i = 1; i < smoothed.length; i++) {
            if (smoothed[i] > smoothed[best]) {
                best = i;
            }
        }
        String label = labels.get(best);
        double conf = smoothed[best];
        return new Decision(best, label, conf, conf >= threshold && !isFiller(label));
    }
}
