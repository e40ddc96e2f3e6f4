package org.kwskd.app.core;

/** Runs the network once; the app backs it with LiteRT, the tests with recorded or stub outputs. */
public interface Model {
    /** Whole-clip files: {@code input} is float32 or int8 as the sidecar says; returns the flat output tensor. */
    TensorData run(TensorData input);

    /**
     * Streaming files: one call of the file's signature. {@code inputs} are
     * {@link StreamingSpec#inputs()} in order (audio, tail, states); returns
     * {@link StreamingSpec#outputs()} in order (logits, tail_out, states_out), each flat.
     */
    default TensorData[] runFrame(TensorData[] inputs) {
        throw new UnsupportedOperationException("this model cannot run streaming files");
    }
}
