package org.kwskd.app.core;

/** Everything one inference produced. */
public final class HopResult {
    public final int hopIndex;
    /** Total samples recorded when this inference ran; the window ends there. */
    public final long endSample;
    /** The audio tensor handed to the model (streaming files: the newest hop). */
    public final TensorData modelInput;
    /** The model's output tensor (streaming files: the logits). */
    public final TensorData rawOutput;
    public final double[] posteriors;
    public final double[] smoothed;
    public final Decision decision;
    /** Wall time of {@link Model#run} / {@link Model#runFrame} alone, from the stream's clock. */
    public final long latencyNanos;
    /** The {@link Announcer} fired on this hop: a keyword onset outside the suppression time. */
    public final boolean announced;
    /** Streaming files: every tensor handed to the model (audio, tail, states); null otherwise. */
    public final TensorData[] frameInputs;
    /** Streaming files: every tensor the model returned (logits, tail_out, states_out); null otherwise. */
    public final TensorData[] frameOutputs;

    public HopResult(int hopIndex, long endSample, TensorData modelInput, TensorData rawOutput,
                     double[] posteriors, double[] smoothed, Decision decision, long latencyNanos) {
        this(hopIndex, endSample, modelInput, rawOutput, posteriors, smoothed, decision, latencyNanos, false, null, null);
    }

    public HopResult(int hopIndex, long endSample, TensorData modelInput, TensorData rawOutput,
                     double[] posteriors, double[] smoothed, Decision decision, long latencyNanos,
                     boolean announced, TensorData[] frameInputs, TensorData[] frameOutputs) {
        this.hopIndex = hopIndex;
        this.endSample = endSample;
        this.modelInput = modelInput;
        this.rawOutput = rawOutput;
        this.posteriors = posteriors;
        this.smoothed = smoothed;
        this.decision = decision;
        this.latencyNanos = latencyNanos;
        this.announced = announced;
        this.frameInputs = frameInputs;
        this.frameOutputs = frameOutputs;
    }
}
