// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.media; public class AudioFormat { public static final int CHANNEL_IN_MONO=16, ENCODING_PCM_16BIT=2; }
