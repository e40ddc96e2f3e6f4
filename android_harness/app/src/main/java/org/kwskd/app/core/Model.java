package org.kwskd.app.core;

/** Runs the network once; the app backs it with LiteRT, the tests with recorded outputs. */
public interface Model {
    /** {@code input} is float32 or int8 as the sidecar says; returns the flat output tensor. */
    TensorData run(TensorData input);
}
