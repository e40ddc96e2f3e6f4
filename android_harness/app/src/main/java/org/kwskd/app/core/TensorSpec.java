package org.kwskd.app.core;

/** One model input or output as described by the sidecar. */
public final class TensorSpec {
    public static final String FLOAT32 = "float32";
    public static final String INT8 = "int8";

    public final String name;
    public final int[] shape;
    public final String dtype;
    /** Non-null exactly when {@link #dtype} is int8. */
    public final Quantization quantization;
    /** Outputs only: "logits" (apply softmax/sigmoid) or "probabilities" (use as they are). */
    public final String kind;

    public TensorSpec(String name, int[] shape, String dtype, Quantization quantization, String kind) {
        this.name = name;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.quantization = quantization;
        this.kind = kind;
    }

    public boolean isInt8() {
        return INT8.equals(dtype);
    }

    /** Number of elements. */
    public int size() {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }
}
