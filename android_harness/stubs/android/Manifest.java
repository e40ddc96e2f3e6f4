// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android; public final class Manifest { public static final class permission { public static final String RECORD_AUDIO="android.permission.RECORD_AUDIO"; } }
