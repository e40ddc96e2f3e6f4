// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.content.pm; public class PackageManager { public static final int PERMISSION_GRANTED=0; }
