package org.kwskd.app.core;

/** A flat model tensor: exactly one of {@link #floats} and {@link #bytes} (int8) is non-null. */
public final class TensorData {
    public final float[] floats;
    public final byte[] bytes;

    private TensorData(float[] floats, byte[] bytes) {
        this.floats = floats;
        this.bytes = bytes;
    }

    public static TensorData ofFloats(float[] values) {
        return new TensorData(values, null);
    }

    public static TensorData ofInt8(byte[] values) {
        return new TensorData(null, values);
    }

    public boolean isInt8() {
        return bytes != null;
    }

    public int length() {
        return bytes != null ? bytes.length : floats.length;
    }
}
