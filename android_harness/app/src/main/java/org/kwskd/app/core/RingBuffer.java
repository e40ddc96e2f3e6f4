package org.kwskd.app.core;

/**
 * The last {@code capacity} int16 microphone samples; starts as silence.
 *
 * <p>Writes copy in at most two blocks, so the audio thread never allocates;
 * {@link #snapshot} returns the window oldest sample first, which is the order
 * the model was trained on.
 */
public final class RingBuffer {
    private final short[] data;
    private int pos; // next write index
    private long totalWritten;

    public RingBuffer(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity must be positive");
        }
        data = new short[capacity];
    }

    public int capacity() {
        return data.length;
    }

    /** Samples written since creation, including those already overwritten. */
    public long totalWritten() {
        return totalWritten;
    }

    public void write(short[] src, int offset, int length) {
        if (offset < 0 || length < 0 || offset + length > src.length) {
            throw new IndexOutOfBoundsException("offset/length outside the source array");
        }
        totalWritten += length;
        int cap = data.length;
        if (length >= cap) { // only the newest `cap` samples survive
            System.arraycopy(src, offset + length - cap, data, 0, cap);
            pos = 0;
            return;
        }
        int first = Math.min(length, cap - pos);
        System.arraycopy(src, offset, data, pos, first);
        System.arraycopy(src, offset + first, data, 0, length - first);
        pos = (pos + length) % cap;
    }

    /** Copies the window, oldest sample first, into {@code out} (length == capacity). */
    public void snapshot(short[] out) {
        int cap = data.length;
        if (out.length != cap) {
            throw new IllegalArgumentException("snapshot array must have the ring's capacity");
        }
        System.arraycopy(data, pos, out, 0, cap - pos);
        System.arraycopy(data, 0, out, cap - pos, pos);
    }

    public short[] snapshot() {
        short[] out = new short[data.length];
        snapshot(out);
        return out;
    }
}
