package org.kwskd.app;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.util.Arrays;
import org.kwskd.app.core.Model;
import org.kwskd.app.core.Sidecar;
import org.kwskd.app.core.StreamOptions;
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
 */
final class LiteRtModel implements Model, AutoCloseable {
    private final Interpreter interpreter;
    private final GpuDelegate gpu;
    private final String delegateName;
    private final ByteBuffer in;
    private final ByteBuffer out;
    private final TensorSpec outSpec;

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
        try {
            check(interp.getInputTensor(0), sidecar.input, modelFile, "input");
            check(interp.getOutputTensor(0), sidecar.output, modelFile, "output");
        } catch (IOException e) {
            close();
            throw e;
        }
        int inBytes = sidecar.input.size() * (sidecar.input.isInt8() ? 1 : 4);
        int outBytes = sidecar.output.size() * (sidecar.output.isInt8() ? 1 : 4);
        in = ByteBuffer.allocateDirect(inBytes).order(ByteOrder.nativeOrder());
        out = ByteBuffer.allocateDirect(outBytes).order(ByteOrder.nativeOrder());
    }

    String delegateName() {
        return delegateName;
    }

    @Override
    public TensorData run(TensorData input) {
        in.rewind();
        if (input.isInt8()) {
            in.put(input.bytes);
        } else {
            in.asFloatBuffer().put(input.floats);
        }
        in.rewind();
        out.rewind();
        interpreter.run(in, out);
        out.rewind();
        if (outSpec.isInt8()) {
            byte[] b = new byte[outSpec.size()];
            out.get(b);
            return TensorData.ofInt8(b);
        }
        float[] f = new float[outSpec.size()];
        out.asFloatBuffer().get(f);
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
