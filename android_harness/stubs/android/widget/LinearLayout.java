// Compile-only stub, NOT the real API: lets test-jvm.sh type-check the app's Android classes without the SDK.
package android.widget; public class LinearLayout extends android.view.ViewGroup { public static final int VERTICAL=1; public LinearLayout(android.content.Context c){super(c);} public void setOrientation(int o){} }
