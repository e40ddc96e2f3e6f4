// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.view; public class ViewGroup extends View { public ViewGroup(android.content.Context c){super(c);} public void addView(View v){} }
