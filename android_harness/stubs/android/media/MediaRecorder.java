// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.media; public class MediaRecorder { public static final class AudioSource { public static final int VOICE_RECOGNITION=6; } }
