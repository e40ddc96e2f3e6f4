// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.content; public class Intent { public int getIntExtra(String k,int d){return d;} public float getFloatExtra(String k,float d){return d;} public boolean getBooleanExtra(String k,boolean d){return d;} public String getStringExtra(String k){return null;} }
