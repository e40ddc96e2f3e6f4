package org.kwskd.app;

import android.Manifest;
import android.app.Activity;
import android.content.Intent;
import android.content.pm.PackageManager;
import android.graphics.Typeface;
import android.os.Bundle;
import android.util.Log;
import android.util.TypedValue;
import android.view.WindowManager;
import android.widget.LinearLayout;
import android.widget.TextView;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import org.kwskd.app.core.HopResult;
import org.kwskd.app.core.KeywordStream;
import org.kwskd.app.core.LatencyLog;
import org.kwskd.app.core.Sidecar;
import org.kwskd.app.core.SidecarException;
import org.kwskd.app.core.StreamOptions;

/**
 * The kws-kd sample app: load FILE.tflite + FILE.json, listen, show the top label.
 *
 * <p>Intent extras (all optional; see android_harness/README.md):
 * {@code model_path} (absolute, or relative to the app's files dir; default
 * {@code model.tflite} there), {@code hop_ms} (int, 250), {@code smoothing} (int, 3),
 * {@code threshold} (float, 0.5), {@code threads} (int, 1), {@code use_gpu} (boolean),
 * {@code suppression_ms} (int, 500: at most one keyword announcement per this time).
 * Streaming files (sidecar {@code "streaming": {...}}) run once per hop of their own
 * (20 ms), so {@code hop_ms} does not apply to them and {@code smoothing} counts those hops.
 * The UI is built in code so the app has no resources to keep in sync.
 */
public final class MainActivity extends Activity implements AudioLoop.Listener {
    private static final int PERMISSION_REQUEST = 1;
    private static final String TAG = "KwsKdApp";

    private TextView status;
    private TextView label;
    private TextView detail;
    private LiteRtModel model;
    private Sidecar sidecar;
    private StreamOptions options;
    private AudioLoop loop;
    private Thread thread;
    private String lastAnnounced = "";

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        getWindow().addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON);
        LinearLayout root = new LinearLayout(this);
        root.setOrientation(LinearLayout.VERTICAL);
        int pad = (int) TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_DIP, 24, getResources().getDisplayMetrics());
        root.setPadding(pad, pad, pad, pad);
        status = new TextView(this);
        label = new TextView(this);
        label.setTextSize(TypedValue.COMPLEX_UNIT_SP, 48);
        label.setTypeface(Typeface.DEFAULT_BOLD);
        detail = new TextView(this);
        detail.setTextSize(TypedValue.COMPLEX_UNIT_SP, 18);
        root.addView(status);
        root.addView(label);
        root.addView(detail);
        setContentView(root);
        loadModel(getIntent());
    }

    @Override
    protected void onNewIntent(Intent intent) {
        super.onNewIntent(intent);
        setIntent(intent);
        stopListening();
        closeModel();
        loadModel(intent);
        maybeStart();
    }

    private void loadModel(Intent intent) {
        try {
            options = new StreamOptions(
                    intent.getIntExtra("hop_ms", StreamOptions.DEFAULT_HOP_MS),
                    intent.getIntExtra("smoothing", StreamOptions.DEFAULT_SMOOTHING_WINDOWS),
                    intent.getFloatExtra("threshold", (float) StreamOptions.DEFAULT_THRESHOLD),
                    intent.getIntExtra("threads", StreamOptions.DEFAULT_THREADS),
                    intent.getBooleanExtra("use_gpu", false),
                    intent.getIntExtra("suppression_ms", StreamOptions.DEFAULT_SUPPRESSION_MS));
        } catch (IllegalArgumentException e) {
            showError("bad intent extra: " + e.getMessage());
            return;
        }
        String path = intent.getStringExtra("model_path");
        File modelFile = path == null ? new File(getFilesDir(), "model.tflite")
                : (path.startsWith("/") ? new File(path) : new File(getFilesDir(), path));
        File sidecarFile = new File(Sidecar.sidecarPathFor(modelFile.getPath()));
        if (!modelFile.isFile()) {
            showError("no model at " + modelFile + "\nPush FILE.tflite + FILE.json and start with --es model_path "
                    + "(android_harness/harness.py does this).");
            return;
        }
        try {
            sidecar = Sidecar.parse(readText(sidecarFile), sidecarFile.getPath());
            model = new LiteRtModel(modelFile, sidecar, options);
        } catch (SidecarException | IOException | RuntimeException e) {
            showError(e.getMessage() != null ? e.getMessage() : e.toString());
            sidecar = null;
            return;
        }
        String hopMs = hopMsText();
        String msg = String.format(Locale.ROOT,
                "ready model=%s input=%s output=%s labels=%d delegate=%s hop_ms=%s threads=%d streaming=%b",
                modelFile.getName(), sidecar.input.dtype, sidecar.output.dtype, sidecar.labels.size(),
                model.delegateName(), hopMs, options.threads, sidecar.isStreaming());
        Log.i(LatencyLog.TAG, msg);
        status.setText(modelFile.getName() + "  " + sidecar.input.dtype + " in, " + model.delegateName()
                + (sidecar.isStreaming() ? ", streaming" : "") + ", hop " + hopMs + " ms, smoothing "
                + options.smoothingWindows);
        lastAnnounced = "";
        label.setText("…");
    }

    /** The hop actually used: the option, or a streaming file's own hop. */
    private String hopMsText() {
        if (!sidecar.isStreaming()) {
            return Integer.toString(options.hopMs);
        }
        long num = (long) sidecar.streaming.hopSamples * 1000;
        return num % sidecar.sampleRate == 0 ? Long.toString(num / sidecar.sampleRate)
                : String.format(Locale.ROOT, "%.3f", (double) num / sidecar.sampleRate);
    }

    @Override
    protected void onResume() {
        super.onResume();
        maybeStart();
    }

    @Override
    protected void onPause() {
        stopListening();
        super.onPause();
    }

    @Override
    protected void onDestroy() {
        stopListening();
        closeModel();
        super.onDestroy();
    }

    private void maybeStart() {
        if (model == null || thread != null) {
            return;
        }
        if (checkSelfPermission(Manifest.permission.RECORD_AUDIO) != PackageManager.PERMISSION_GRANTED) {
            requestPermissions(new String[] {Manifest.permission.RECORD_AUDIO}, PERMISSION_REQUEST);
            return;
        }
        KeywordStream stream = new KeywordStream(sidecar, model, options, System::nanoTime);
        loop = new AudioLoop(stream, sidecar.sampleRate, model.delegateName(), this);
        thread = new Thread(loop, "kwskd-audio");
        thread.start();
    }

    @Override
    public void onRequestPermissionsResult(int requestCode, String[] permissions, int[] grantResults) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults);
        if (requestCode != PERMISSION_REQUEST) {
            return;
        }
        if (grantResults.length > 0 && grantResults[0] == PackageManager.PERMISSION_GRANTED) {
            maybeStart();
        } else {
            showError("microphone permission denied: the app cannot listen without RECORD_AUDIO");
        }
    }

    private void stopListening() {
        if (loop != null) {
            loop.stop();
        }
        if (thread != null) {
            try {
                thread.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        loop = null;
        thread = null;
    }

    private void closeModel() {
        if (model != null) {
            model.close();
            model = null;
        }
    }

    @Override
    public void onResult(HopResult r) {
        final String top = r.decision.label;
        if (r.announced) {
            lastAnnounced = String.format(Locale.ROOT, "\nannounced: %s (hop %d)", r.decision.label, r.hopIndex);
        }
        final String info = String.format(Locale.ROOT, "confidence %.2f%s\nlatency %.2f ms (hop %d)%s",
                r.decision.confidence, r.decision.detected ? "  ✔" : "", r.latencyNanos / 1e6, r.hopIndex, lastAnnounced);
        runOnUiThread(() -> {
            label.setText(top);
            detail.setText(info);
        });
    }

    @Override
    public void onError(String message) {
        runOnUiThread(() -> showError(message));
    }

    private void showError(String message) {
        Log.e(TAG, message);
        Log.e(LatencyLog.TAG, "error=" + message.replace('\n', ' '));
        status.setText(message);
        label.setText("");
        detail.setText("");
    }

    private static String readText(File f) throws IOException {
        try (InputStream in = new FileInputStream(f)) {
            byte[] data = new byte[(int) f.length()];
            int off = 0;
            while (off < data.length) {
                int n = in.read(data, off, data.length - off);
                if (n < 0) {
                    break;
                }
                off += n;
            }
            return new String(data, 0, off, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IOException(f.getPath() + ": cannot read sidecar (" + e.getMessage() + ")");
        }
    }
}
