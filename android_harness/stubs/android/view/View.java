// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.view; public class View { public View(android.content.Context c){} public void setPadding(int a,int b,int c,int d){} }
