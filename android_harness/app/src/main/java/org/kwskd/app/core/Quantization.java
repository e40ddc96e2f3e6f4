package org.kwskd.app.core;

/** Affine int8 parameters of one tensor: real = (q - zeroPoint) * scale. */
public final class Quantization {
    public final double scale;
    public final int zeroPoint;

    public Quantization(double scale, int zeroPoint) {
        this.scale = scale;
        this.zeroPoint = zeroPoint;
    }
}
