// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package org.tensorflow.lite; public interface Tensor { DataType dataType(); int numElements(); int[] shape(); QuantizationParams quantizationParams(); class QuantizationParams { public float getScale(){return 0;} public int getZeroPoint(){return 0;} } }
