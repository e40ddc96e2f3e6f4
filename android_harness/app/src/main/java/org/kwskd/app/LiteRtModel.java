package org.kwskd.app;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.kwskd.app.core.Model;
import org.kwskd.app.core.Sidecar;
import org.kwskd.app.core.StreamOptions;
import org.kwskd.app.core.StreamingSpec;
import org.kwskd.app.core.TensorData;
import org.kwskd.app.core.TensorSpec;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;
import org.tensorflow.lite.gpu.GpuDelegate;

/**
 * {@link Model} backed by the LiteRT Interpreter (com.google.ai.edge.litert, which keeps
 * the org.tensorflow.lite package names).
 *
 * <p>XNNPACK is the CPU default; with {@code use_gpu} the GPU delegate is tried first
 * and, when it cannot take the model (many int8 graphs), the app falls back to XNNPACK
 * and says so in {@link #delegateName()}. The interpreter's own tensor types, shapes
 * and quantization are checked against the sidecar so a mismatched pair of files
 * fails at load time with a clear message, not with garbage posteriors.
 *
 * <p>Streaming files ({@code "streaming": {...}} in the sidecar) are run through their one
 * signature by name ({@link Interpreter#runSignature}): {@link #runFrame} hands LiteRT the
 * audio, tail and state tensors the core's {@code StreamingState} built and returns the
 * logits, tail and next states; every named tensor is checked against
 * {@code streaming.tensors} at load time.
 */
final class LiteRtModel implements Model, AutoCloseable {
    private final Interpreter interpreter;
    private final GpuDelegate gpu;
    private final String delegateName;
    private final ByteBuffer in;
    private final ByteBuffer out;
    private final TensorSpec outSpec;
    // streaming files only (else null): one direct buffer per signature input / output, in layout order
    private final String signatureKey;
    private final List<TensorSpec> frameInSpecs;
    private final List<TensorSpec> frameOutSpecs;
    private final ByteBuffer[] frameIn;
    private final ByteBuffer[] frameOut;

    LiteRtModel(File modelFile, Sidecar sidecar, StreamOptions options) throws IOException {
        MappedByteBuffer buffer = map(modelFile);
        Interpreter interp = null;
        GpuDelegate delegate = null;
        String name = "xnnpack";
        if (options.useGpu) {
            try {
                delegate = new GpuDelegate();
                Interpreter.Options gpuOptions = new Interpreter.Options().setNumThreads(options.threads).addDelegate(delegate);
                interp = new Interpreter(buffer, gpuOptions);
                name = "gpu";
            } catch (RuntimeException | UnsatisfiedLinkError e) {
                if (delegate != null) {
                    delegate.close();
                    delegate = null;
                }
                name = "xnnpack(gpu unavailable: " + e.getClass().getSimpleName() + ")";
            }
        }
        if (interp == null) {
            Interpreter.Options cpu = new Interpreter.Options()
                    .setNumThreads(options.threads)
                    .setUseXNNPACK(true);
            interp = new Interpreter(buffer, cpu);
        }
        this.interpreter = interp;
        this.gpu = delegate;
        this.delegateName = name;
        this.outSpec = sidecar.output;
        StreamingSpec streaming = sidecar.streaming;
        String key = null;
        try {
            if (streaming == null) {
                check(interp.getInputTensor(0), sidecar.input, modelFile, "input");
                check(interp.getOutputTensor(0), sidecar.output, modelFile, "output");
            } else {
                String[] keys = interp.getSignatureKeys();
                if (keys == null || keys.length != 1) {
                    throw new IOException(modelFile.getName() + ": a streaming file must have one signature, found "
                            + Arrays.toString(keys));
                }
                key = keys[0];
                for (TensorSpec t : streaming.inputs()) {
                    check(tensor(interp, t.name, key, true, modelFile), t, modelFile, "input '" + t.name + "'");
                }
                for (TensorSpec t : streaming.outputs()) {
                    check(tensor(interp, t.name, key, false, modelFile), t, modelFile, "output '" + t.name + "'");
                }
            }
        } catch (IOException e) {
            close();
            throw e;
        }
        this.signatureKey = key;
        if (streaming == null) {
            in = buffer(sidecar.input);
            out = buffer(sidecar.output);
            frameInSpecs = frameOutSpecs = null;
            frameIn = frameOut = null;
        } else {
            in = out = null;
            frameInSpecs = streaming.inputs();
            frameOutSpecs = streaming.outputs();
            frameIn = new ByteBuffer[frameInSpecs.size()];
            frameOut = new ByteBuffer[frameOutSpecs.size()];
            for (int i = 0; i < frameIn.length; i++) {
                frameIn[i] = buffer(frameInSpecs.get(i));
            }
            for (int i = 0; i < frameOut.length; i++) {
                frameOut[i] = buffer(frameOutSpecs.get(i));
            }
        }
    }

    private static ByteBuffer buffer(TensorSpec spec) {
        return ByteBuffer.allocateDirect(spec.size() * (spec.isInt8() ? 1 : 4)).order(ByteOrder.nativeOrder());
    }

    private static Tensor tensor(Interpreter interp, String name, String key, boolean input, File file) throws IOException {
        try {
            return input ? interp.getInputTensorFromSignature(name, key) : interp.getOutputTensorFromSignature(name, key);
        } catch (IllegalArgumentException e) {
            throw new IOException(file.getName() + ": its signature has no " + (input ? "input" : "output") + " '" + name
                    + "' (wrong sidecar for this model?)");
        }
    }

    String delegateName() {
        return delegateName;
    }

    @Override
    public TensorData run(TensorData input) {
        if (in == null) {
            throw new IllegalStateException("a streaming file runs through runFrame");
        }
        put(in, input);
        out.rewind();
        interpreter.run(in, out);
        return get(out, outSpec);
    }

    @Override
    public TensorData[] runFrame(TensorData[] inputs) {
        if (frameIn == null) {
            throw new IllegalStateException("a whole-clip file runs through run");
        }
        Map<String, Object> ins = new HashMap<>();
        for (int i = 0; i < frameIn.length; i++) {
            put(frameIn[i], inputs[i]);
            ins.put(frameInSpecs.get(i).name, frameIn[i]);
        }
        Map<String, Object> outs = new HashMap<>();
        for (int i = 0; i < frameOut.length; i++) {
            frameOut[i].rewind();
            outs.put(frameOutSpecs.get(i).name, frameOut[i]);
        }
        interpreter.runSignature(ins, outs, signatureKey);
        TensorData[] result = new TensorData[frameOut.length];
        for (int i = 0; i < frameOut.length; i++) {
            result[i] = get(frameOut[i], frameOutSpecs.get(i));
        }
        return result;
    }

    private static void put(ByteBuffer b, TensorData t) {
        b.rewind();
        if (t.isInt8()) {
            b.put(t.bytes);
        } else {
            b.asFloatBuffer().put(t.floats);
        }
        b.rewind();
    }

    private static TensorData get(ByteBuffer b, TensorSpec spec) {
        b.rewind();
        if (spec.isInt8()) {
            byte[] v = new byte[spec.size()];
            b.get(v);
            return TensorData.ofInt8(v);
        }
        float[] f = new float[spec.size()];
        b.asFloatBuffer().get(f);
        return TensorData.ofFloats(f);
    }

    @Override
    public void close() {
        interpreter.close();
        if (gpu != null) {
            gpu.close();
        }
    }

    private static MappedByteBuffer map(File f) throws IOException {
        try (FileInputStream s = new FileInputStream(f); FileChannel ch = s.getChannel()) {
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
        }
    }

    private static void check(Tensor t, TensorSpec spec, File file, String which) throws IOException {
        DataType want = spec.isInt8() ? DataType.INT8 : DataType.FLOAT32;
        if (t.dataType() != want) {
            throw new IOException(file.getName() + ": model " + which + " is " + t.dataType()
                    + " but the sidecar says " + spec.dtype + " (wrong sidecar for this model?)");
        }
        if (t.numElements() != spec.size()) {
            throw new IOException(file.getName() + ": model " + which + " shape " + Arrays.toString(t.shape())
                    + " does not match the sidecar's " + Arrays.toString(spec.shape));
        }
        if (spec.isInt8()) {
            Tensor.QuantizationParams q = t.quantizationParams();
            boolean scaleOk = Math.abs(q.getScale() - spec.quantization.scale) <= 1e-6 * spec.quantization.scale;
            if (!scaleOk || q.getZeroPoint() != spec.quantization.zeroPoint) {
                throw new IOException(file.getName() + ": model " + which + " quantization (" + q.getScale() + ", "
                        + q.getZeroPoint() + ") differs from the sidecar's");
            }
        }
    }
}
