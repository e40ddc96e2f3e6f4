package org.kwskd.app;

import android.media.AudioFormat;
import android.media.AudioRecord;
import android.media.MediaRecorder;
import android.util.Log;
import java.util.List;
import org.kwskd.app.core.HopResult;
import org.kwskd.app.core.KeywordStream;
import org.kwskd.app.core.LatencyLog;

/**
 * The audio thread: 16-bit mono AudioRecord at the model's sample rate, every read fed
 * to the {@link KeywordStream}; each inference is logged (tag {@link LatencyLog#TAG},
 * parsed by android_harness/harness.py) and handed to the UI.
 */
final class AudioLoop implements Runnable {
    interface Listener {
        void onResult(HopResult result);

        void onError(String message);
    }

    private static final int READ_SAMPLES = 512; // 32 ms at 16 kHz: small reads keep hops on time

    private final KeywordStream stream;
    private final int sampleRate;
    private final String delegate;
    private final Listener listener;
    private volatile boolean running = true;

    AudioLoop(KeywordStream stream, int sampleRate, String delegate, Listener listener) {
        this.stream = stream;
        this.sampleRate = sampleRate;
        this.delegate = delegate;
        this.listener = listener;
    }

    void stop() {
        running = false;
    }

    @Override
    @SuppressWarnings("MissingPermission") // MainActivity starts this only after RECORD_AUDIO is granted
    public void run() {
        int minBytes = AudioRecord.getMinBufferSize(sampleRate, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT);
        if (minBytes <= 0) {
            fail("this device cannot record 16-bit mono at " + sampleRate + " Hz");
            return;
        }
        AudioRecord record = new AudioRecord(MediaRecorder.AudioSource.VOICE_RECOGNITION, sampleRate,
                AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT, Math.max(minBytes, sampleRate * 2));
        if (record.getState() != AudioRecord.STATE_INITIALIZED) {
            record.release();
            fail("AudioRecord failed to initialise at " + sampleRate + " Hz");
            return;
        }
        short[] buf = new short[READ_SAMPLES];
        try {
            record.startRecording();
            while (running) {
                int n = record.read(buf, 0, buf.length);
                if (n < 0) {
                    fail("AudioRecord.read returned error " + n);
                    return;
                }
                List<HopResult> results = stream.feed(buf, 0, n);
                for (HopResult r : results) {
                    Log.i(LatencyLog.TAG, LatencyLog.format(r, delegate));
                    listener.onResult(r);
                }
            }
        } catch (RuntimeException e) {
            fail("inference failed: " + e);
        } finally {
            try {
                record.stop();
            } catch (IllegalStateException ignored) {
                // never started
            }
            record.release();
        }
    }

    private void fail(String message) {
        listener.onError(message); // MainActivity logs it with the harness tag
    }
}
