package org.kwskd.app.core;

/**
 * When to announce a keyword: once per onset of a detected label, never faster than the
 * suppression time. The Java port of {@code kws_kd.app_logic.detection_events} (hop by hop:
 * {@code kws_kd.app_logic.Announcer}), the rule {@code kws-kd eval --stream} counts false
 * alarms and rejections with.
 *
 * <p>A hop fires when it is detected, the hop before was not detected with the same label
 * (an onset), and at least {@code suppression} seconds (minus 1e-9: hop times are sample
 * counts divided by the rate) passed since the last announcement of any label (TensorFlow's
 * RecognizeCommands, 500 ms). An onset inside the suppression time is dropped for good: it
 * does not fire later while the label stays detected.
 */
public final class Announcer {
    public static final double DEFAULT_SUPPRESSION_S = 0.5;

    private final double suppressionS;
    private double last = Double.NEGATIVE_INFINITY;
    private int prevIndex = -1;
    private boolean prevDetected;

    public Announcer(double suppressionS) {
        if (!(suppressionS >= 0) || Double.isInfinite(suppressionS)) {
            throw new IllegalArgumentException("suppression time must be a non-negative number of seconds, got " + suppressionS);
        }
        this.suppressionS = suppressionS;
    }

    /** Whether the hop ending at {@code timeS} seconds announces its decision. */
    public boolean push(double timeS, int index, boolean detected) {
        boolean held = prevDetected && prevIndex == index;
        prevIndex = index;
        prevDetected = detected;
        if (detected && !held && timeS - last >= suppressionS - 1e-9) {
            last = timeS;
            return true;
        }
        return false;
    }

    /** {@code detection_events} over a whole sequence: the indices of the hops that announce. */
    public static int[] detectionEvents(double[] timesS, int[] index, boolean[] detected, double suppressionS) {
        if (timesS.length != index.length || index.length != detected.length) {
            throw new IllegalArgumentException("times, index and detected must have one entry per hop");
        }
        Announcer a = new Announcer(suppressionS);
        int[] fired = new int[timesS.length];
        int n = 0;
        for (int i = 0; i < timesS.length; i++) {
            if (a.push(timesS[i], index[i], detected[i])) {
                fired[n++] = i;
            }
        }
        return java.util.Arrays.copyOf(fired, n);
    }
}
