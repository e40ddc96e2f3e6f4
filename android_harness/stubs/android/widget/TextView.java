// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.widget; public class TextView extends android.view.View { public TextView(android.content.Context c){super(c);} public void setText(CharSequence s){} public void setTextSize(int u,float s){} public void setTypeface(android.graphics.Typeface t){} }
