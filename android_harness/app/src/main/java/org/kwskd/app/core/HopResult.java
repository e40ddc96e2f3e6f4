package org.kwskd.app.core;

/** Everything one inference produced. */
public final class HopResult {
    public final int hopIndex;
    /** Total samples recorded when this inference ran; the window ends there. */
    public final long endSample;
    public final TensorData modelInput;
    public final TensorData rawOutput;
    public final double[] posteriors;
    public final double[] smoothed;
    public final Decision decision;
    /** Wall time of {@link Model#run} alone, from the stream's clock. */
    public final long latencyNanos;

    public HopResult(int hopIndex, long endSample, TensorData modelInput, TensorData rawOutput,
                     double[] posteriors, double[] smoothed, Decision decision, long latencyNanos) {
        this.hopIndex = hopIndex;
        this.endSample = endSample;
        this.modelInput = modelInput;
        this.rawOutput = rawOutput;
        this.posteriors = posteriors;
        this.smoothed = smoothed;
        this.decision = decision;
        this.latencyNanos = latencyNanos;
    }
}
