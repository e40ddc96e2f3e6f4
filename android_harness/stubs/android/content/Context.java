// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.content; public abstract class Context { public java.io.File getFilesDir(){return null;} public int checkSelfPermission(String p){return 0;} public android.content.res.Resources getResources(){return null;} }
