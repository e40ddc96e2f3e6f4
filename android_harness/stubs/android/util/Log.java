// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.util; public final class Log { public static int i(String t,String m){return 0;} public static int e(String t,String m){return 0;} }
