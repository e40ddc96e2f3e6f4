package org.kwskd.app.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.List;
import java.util.Map;
import org.junit.Test;

/** Sidecar parsing (schema in docs/architecture.md) and the JSON reader under it. */
public class SidecarTest {

    @Test
    public void parsesTheGoldenSidecars() throws Exception {
        Sidecar f = Sidecar.parse(Resources.text("/golden/tiny_float.json"), "tiny_float.json");
        assertEquals(4, f.labels.size());
        assertEquals("yes", f.labels.get(2));
        assertEquals(1600, f.inputSamples);
        assertEquals(16000, f.sampleRate);
        assertFalse(f.input.isInt8());
        assertNull(f.input.quantization);
        assertFalse(f.multiLabel);

        Sidecar q = Sidecar.parse(Resources.text("/golden/tiny_int8.json"), "tiny_int8.json");
        assertTrue(q.input.isInt8() && q.output.isInt8());
        Map<String, Object> raw = Resources.map(Json.parse(Resources.text("/golden/tiny_int8.json")));
        Map<String, Object> rq = Resources.map(Resources.map(raw.get("input")).get("quantization"));
        assertEquals(((Number) rq.get("scale")).doubleValue(), q.input.quantization.scale, 0.0);
        assertEquals((long) (Long) rq.get("zero_point"), q.input.quantization.zeroPoint);

        assertTrue(Sidecar.parse(Resources.text("/golden/tiny_float_multilabel.json"), "m").multiLabel);
    }

    private static String modified(String key, String jsonValue) throws Exception {
        String text = Resources.text("/golden/tiny_int8.json");
        Map<String, Object> obj = Resources.map(Json.parse(text));
        if (!obj.containsKey(key)) {
            throw new AssertionError("no key " + key);
        }
        // replace the top-level value textually: the golden sidecar is pretty-printed, one key per line
        int at = text.indexOf("\n  \"" + key + "\": ");
        int start = at + key.length() + 7;
        int depth = 0;
        int end = start;
        for (; end < text.length(); end++) {
            char c = text.charAt(end);
            if (c == '[' || c == '{') {
                depth++;
            } else if (c == ']' || c == '}') {
                if (depth == 0) {
                    break;
                }
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
        }
        return text.substring(0, start) + jsonValue + text.substring(end);
    }

    private static void expectError(String text, String fragment) {
        try {
            Sidecar.parse(text, "/sdcard/m.json");
            fail("accepted a sidecar that should fail with: " + fragment);
        } catch (SidecarException e) {
            assertTrue(e.getMessage(), e.getMessage().startsWith("/sdcard/m.json: "));
            assertTrue(e.getMessage(), e.getMessage().contains(fragment));
            assertFalse(e.getMessage().contains("\n"));
        }
    }

    @Test
    public void rejectsWhatTheAppCannotRun() throws Exception {
        expectError(modified("format", "\"other\""), "'format'");
        expectError(modified("version", "2"), "version 2");
        expectError(modified("streaming", "true"), "streaming");
        expectError(modified("labels", "[]"), "labels");
        expectError(modified("labels", "[\"a\", \"b\"]"), "does not match 2 labels");
        expectError(modified("input_samples", "16000"), "input_samples=16000");
        expectError(modified("sample_rate", "\"16k\""), "sample_rate");
        expectError(modified("input", "{\"shape\": [1, 1600], \"dtype\": \"int8\", \"quantization\": null}"),
                "needs 'quantization'");
        expectError(modified("input", "{\"shape\": [1, 1600], \"dtype\": \"uint8\"}"), "uint8");
        expectError("{not json", "not valid JSON");
        expectError("[1, 2]", "must be a JSON object");
    }

    @Test
    public void parsesTheStreamingLayout() throws Exception {
        Sidecar q = Sidecar.parse(Resources.text("/golden/stream_int8.json"), "stream_int8.json");
        assertTrue(q.isStreaming());
        StreamingSpec s = q.streaming;
        assertEquals(160, s.hopSamples);
        assertEquals(208, s.windowSamples);
        assertEquals(48, s.tailSamples);
        assertEquals(2, s.warmupFrames);
        assertEquals(4800, q.inputSamples); // the clip length it was verified on: informational
        assertEquals(2, s.states.size());
        // layout order (the "states" object), not the name order the tensors are listed in
        assertEquals("conv0_buffer", s.states.get(0).name);
        assertEquals("state_h", s.states.get(1).name);
        assertArrayEquals(new int[] {2, 3}, s.states.get(0).shape);
        assertFalse(s.states.get(0).recurrent);
        assertTrue(s.states.get(1).recurrent);
        assertEquals(0.019999999552965164, s.states.get(1).input.quantization.scale, 0.0);
        assertEquals(1, s.states.get(1).output.quantization.zeroPoint);
        assertEquals("output_3", s.states.get(1).output.name);
        assertEquals("tail", s.tail.name);
        assertEquals("output_1", s.tailOut.name);
        assertEquals("logits", s.logits.kind);
        assertTrue(s.audio.isInt8() && s.logits.isInt8());
        String[] in = new String[4];
        for (int i = 0; i < 4; i++) {
            in[i] = s.inputs().get(i).name;
        }
        assertArrayEquals(new String[] {"audio", "tail", "conv0_buffer", "state_h"}, in);
        assertEquals("output_2", s.outputs().get(2).name);

        Sidecar f = Sidecar.parse(Resources.text("/golden/stream_float.json"), "stream_float.json");
        assertTrue(f.isStreaming() && !f.streaming.audio.isInt8() && f.streaming.states.get(0).input.quantization == null);
        assertFalse(Sidecar.parse(Resources.text("/golden/tiny_float.json"), "t").isStreaming());
        // a streaming file may not know its clip length (kws-kd writes 0 then)
        assertEquals(0, Sidecar.parse(Resources.text("/golden/stream_float.json").replace("\"input_samples\": 4800",
                "\"input_samples\": 0"), "s").inputSamples);
    }

    private static void expectStreamingError(String from, String to, String fragment) throws Exception {
        String text = Resources.text("/golden/stream_int8.json");
        assertTrue("golden sidecar holds " + from, text.contains(from));
        expectError(text.replace(from, to), fragment);
    }

    @Test
    public void rejectsBrokenStreamingLayouts() throws Exception {
        expectStreamingError("\"streaming\": {", "\"streaming\": \"yes\", \"old\": {", "must be false or the streaming layout");
        expectStreamingError("\"hop_samples\": 160", "\"hop_samples\": 0", "'streaming.hop_samples' must be positive");
        expectStreamingError("\"window_samples\": 208", "\"window_samples\": 160", "window_samples' larger");
        expectStreamingError("\"tail_samples\": 48", "\"tail_samples\": 47", "tail_samples' is not");
        expectStreamingError("\"warmup_frames\": 2", "\"warmup_frames\": -1", "warmup_frames' must not be negative");
        expectStreamingError("\"recurrent\": [\n      \"state_h\"", "\"recurrent\": [\n      \"state_x\"", "names 'state_x'");
        expectStreamingError("\"tensors\": {", "\"tensorz\": {", "missing field 'streaming.tensors'");
        expectStreamingError("\"state_h_out\": {", "\"state_x_out\": {", "missing field 'streaming.tensors.outputs.state_h_out'");
        expectStreamingError("\"name\": \"output_3\",", "", "state_h_out.name' must name");
        expectStreamingError("\"window_samples\": 208,\n    \"tail_samples\": 48", "\"window_samples\": 209",
                "'streaming.tensors.inputs.tail' has shape [1, 48], expected 49 values");
        expectStreamingError("\"state_h\": [\n        4\n      ]", "\"state_h\": [\n        5\n      ]",
                "inputs.state_h' has shape [1, 4], expected 5 values");
        expectStreamingError("\"state_h\": [\n        4\n      ]", "\"state_h\": []", "'streaming.states.state_h' must be");
        String text = Resources.text("/golden/stream_int8.json");
        int last = text.lastIndexOf("\"scale\": 0.05000000074505806"); // the top-level output's, not the tensors'
        assertTrue(last > text.indexOf("\"scale\": 0.05000000074505806"));
        expectError(text.substring(0, last) + "\"scale\": 0.5" + text.substring(last + 28), "differ from 'streaming.tensors'");
        expectStreamingError("\"input_samples\": 4800", "\"input_samples\": -1", "must be positive");
    }

    @Test
    public void sidecarSitsBesideTheModel() {
        assertEquals("/data/local/tmp/kwskd/m.json", Sidecar.sidecarPathFor("/data/local/tmp/kwskd/m.tflite"));
        assertEquals("/a.b/model.json", Sidecar.sidecarPathFor("/a.b/model"));
    }

    @Test
    public void jsonReaderHandlesTheGrammar() throws Exception {
        Map<String, Object> m = Resources.map(Json.parse(
                " {\"a\": [1, -2.5e-3, 3E2, true, false, null], \"s\": \"q\\\"\\\\\\/\\n\\u00e9\\t\", \"e\": {}, \"l\": []} "));
        List<Object> a = Resources.list(m.get("a"));
        assertEquals(1L, a.get(0));
        assertEquals(-2.5e-3, (Double) a.get(1), 0.0);
        assertEquals(300.0, (Double) a.get(2), 0.0);
        assertEquals(Boolean.TRUE, a.get(3));
        assertEquals(Boolean.FALSE, a.get(4));
        assertNull(a.get(5));
        assertEquals("q\"\\/\n\u00e9\t", m.get("s"));
        assertTrue(Resources.map(m.get("e")).isEmpty());
        assertTrue(Resources.list(m.get("l")).isEmpty());
        // a decimal with 17 significant digits parses to the same double Python wrote
        assertEquals(0.007843137718737125, (Double) Json.parse("0.007843137718737125"), 0.0);
        for (String bad : new String[] {"", "{", "[1,]", "{\"a\" 1}", "01x", "\"abc", "tru", "{\"a\":1} x", "-", "1."}) {
            try {
                Json.parse(bad);
                fail("parsed malformed JSON: " + bad);
            } catch (Json.JsonException expected) {
                assertTrue(expected.getMessage().contains("offset"));
            }
        }
    }
}
