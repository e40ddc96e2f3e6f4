// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package org.tensorflow.lite.gpu; public class GpuDelegate implements org.tensorflow.lite.Delegate { public GpuDelegate(){} public void close(){} }
