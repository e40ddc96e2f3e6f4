// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.view; public interface WindowManager { class LayoutParams { public static final int FLAG_KEEP_SCREEN_ON=128; } }
