// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.util; public class TypedValue { public static final int COMPLEX_UNIT_DIP=1, COMPLEX_UNIT_SP=2; public static float applyDimension(int u, float v, DisplayMetrics m){return v;} }
