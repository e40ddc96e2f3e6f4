// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.content.res; public class Resources { public android.util.DisplayMetrics getDisplayMetrics(){return null;} }
