// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.graphics; public class Typeface { public static final Typeface DEFAULT_BOLD=null; }
