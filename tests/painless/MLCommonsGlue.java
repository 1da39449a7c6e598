// ML Commons' glue around connector pre/post-process scripts, rebuilt for tests with the libraries ML Commons uses
// (Gson, commons-text). Each piece names the ML Commons code it mirrors; the behaviour is described, with sources,
// in docs/ml-commons.md#pre-process, #parameters and #post-process (ML Commons 2.12.0.0 and later).
//
// Protocol: one line of base64(UTF-8 JSON) per request on stdin, one line of base64(UTF-8 JSON) per reply on
// stdout. Test data never enters Java source: only the scripts are compiled, verbatim, as method bodies.
//
// Scripts are compiled on demand in this JVM (javax.tools, in-memory class loader, cached by source hash). Each is
// pasted as the body of `static Object run(java.util.Map<String,Object> params)`, after one documented source
// transform: every loop body opening `{` gets a LoopBudget.tick() call, because Painless counts every loop
// iteration of a script execution and aborts past 1,000,000 (lang-painless CompilerSettings.maxLoopCounter).

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.math.BigInteger;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.FileObject;
import javax.tools.ForwardingJavaFileManager;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileManager;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.apache.commons.text.StringEscapeUtils;
import org.apache.commons.text.StringSubstitutor;

public final class MLCommonsGlue {

    /** Painless's loop counter: every iteration of every loop in one script execution counts. */
    public static final class LoopBudget {
        public static final int MAX = 1_000_000; // lang-painless CompilerSettings.maxLoopCounter default
        static int count;

        public static void tick() {
            if (++count > MAX) {
                throw new Failure("script", "The maximum number of statements that can be executed in a loop has been reached.");
            }
        }
    }

    /** An error as ML Commons would report it; kind says which layer raised it. */
    static final class Failure extends RuntimeException {
        final String kind;

        Failure(String kind, String message) {
            super(message);
            this.kind = kind;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Versions and Gson instances

    static int[] version(JsonObject req) {
        JsonArray v = req.getAsJsonArray("version");
        return new int[] {v.get(0).getAsInt(), v.get(1).getAsInt(), v.get(2).getAsInt()};
    }

    static boolean atLeast(int[] v, int major, int minor) {
        return v[0] > major || (v[0] == major && v[1] >= minor);
    }

    /** StringUtils.gson: `new Gson()` (HTML-safe) up to 3.2; disableHtmlEscaping + serializeNulls from 3.3 (mlc@3.3.0.0). */
    static Gson mlGson(int[] v) {
        if (atLeast(v, 3, 3)) {
            return new GsonBuilder().disableHtmlEscaping().serializeNulls().create();
        }
        return new Gson();
    }

    static final Gson WIRE =
        new GsonBuilder().disableHtmlEscaping().serializeNulls().serializeSpecialFloatingPointValues().create();

    // ---------------------------------------------------------------------------------------------------------
    // Pre-process: ConnectorUtils.processInput -> escapeMLInput -> DefaultPreProcessFunction.process ->
    // StringUtils.convertScriptStringToJsonString -> ConnectorUtils.escapeRemoteInferenceInputData

    /** StringUtils.processTextDoc: gson.toJson(doc) minus the surrounding quotes. */
    static String processTextDoc(Gson gson, String doc) {
        String gsonString = gson.toJson(doc);
        return gsonString.substring(1, gsonString.length() - 1);
    }

    @SuppressWarnings({"rawtypes", "unchecked"})
    static Map<String, String> runPreprocess(String script, String query, List<String> docs, int[] v, String order) {
        if (!atLeast(v, 2, 12)) {
            // mlc@2.11.0.0 ConnectorUtils.processInput: TEXT_SIMILARITY is not a remote input type before 2.12.
            throw new Failure("mlcommons", "Wrong input type");
        }
        if (docs.isEmpty()) {
            // TextSimilarityInputDataSet / TextDocsInputDataSet constructors, before any script runs.
            throw new Failure("mlcommons", query == null ? "empty docs" : "No text documents were provided");
        }
        Gson gson = mlGson(v);
        // escapeMLInput (2.12+): query_text and every text_docs[i] through processTextDoc.
        JsonObject input = new JsonObject();
        if (query == null) {
            // A TextDocsInputDataSet (neural-search's text_embedding processor and neural query,
            // _predict/text_embedding): only text_docs; MLInput.toXContent writes no query_text.
            input.addProperty("algorithm", "TEXT_EMBEDDING");
        } else {
            input.addProperty("algorithm", "TEXT_SIMILARITY");
            input.addProperty("query_text", processTextDoc(gson, query));
        }
        JsonArray textDocs = new JsonArray();
        for (String doc : docs) {
            textDocs.add(processTextDoc(gson, doc));
        }
        input.add("text_docs", textDocs);
        // MLInput.toXContent writes that JSON (XContent/Jackson; WIRE stands in, no HTML escaping), and
        // DefaultPreProcessFunction parses it back: gson.fromJson(inputStr, Map.class) -> LinkedTreeMap, ArrayList.
        Map inputParams = gson.fromJson(WIRE.toJson(input), Map.class);
        Object out = runScript(script, inputParams);
        if (out == null) {
            throw new Failure("mlcommons", "Preprocess function output is null");
        }
        Map<String, Object> map;
        try {
            map = gson.fromJson(out.toString(), Map.class);
        } catch (RuntimeException e) {
            throw new Failure("mlcommons", String.valueOf(e.getMessage()));
        }
        if (map == null) {
            throw new Failure("mlcommons", "Preprocess function output is null");
        }
        return escapeRemoteInferenceInputData(convertScriptStringToJsonString(gson, map, v), v, order);
    }

    /** StringUtils.convertScriptStringToJsonString: strings kept, anything else gson.toJson. */
    @SuppressWarnings("unchecked")
    static Map<String, String> convertScriptStringToJsonString(Gson gson, Map<String, Object> processedInput, int[] v) {
        Object raw = processedInput.get("parameters");
        if (raw == null && !atLeast(v, 2, 13)) {
            // mlc@2.12.0.0 used processedInput.get("parameters") and then iterated it.
            throw new Failure("mlcommons", "NullPointerException: pre-process output has no \"parameters\"");
        }
        if (raw == null) {
            raw = Map.of(); // HEAD: getOrDefault("parameters", Map.of())
        }
        if (!(raw instanceof Map)) {
            throw new Failure("mlcommons", "ClassCastException: \"parameters\" is not an object");
        }
        Map<String, Object> parametersMap = (Map<String, Object>) raw;
        Map<String, String> parameterStringMap = new HashMap<>();
        for (String key : parametersMap.keySet()) {
            Object value = parametersMap.get(key);
            if (value instanceof String) {
                parameterStringMap.put(key, (String) value);
            } else {
                parameterStringMap.put(key, gson.toJson(value));
            }
        }
        return parameterStringMap;
    }

    /**
     * ConnectorUtils.escapeRemoteInferenceInputData. A value that is JSON is kept; from 3.0 a key listed in the
     * script's `no_escape_params` (comma-separated) is kept too; anything else goes through commons-text escapeJson.
     * `order` "noescape-first" models the reordering proposed upstream (ml-commons#5070/#5075): `no_escape_params`
     * consulted first, and a JSON value not listed there escaped like any other.
     */
    static Map<String, String> escapeRemoteInferenceInputData(Map<String, String> parameters, int[] v, String order) {
        Set<String> noEscape = new HashSet<>();
        String listed = parameters.get("no_escape_params");
        if (atLeast(v, 3, 0) && listed != null) {
            for (String key : listed.split(",")) {
                noEscape.add(key.trim());
            }
        }
        boolean listedFirst = "noescape-first".equals(order);
        Map<String, String> newParameters = new HashMap<>();
        for (Map.Entry<String, String> e : parameters.entrySet()) {
            String value = e.getValue();
            if (value == null) {
                newParameters.put(e.getKey(), null);
            } else if (listedFirst ? noEscape.contains(e.getKey()) : isJson(value) || noEscape.contains(e.getKey())) {
                newParameters.put(e.getKey(), value);
            } else {
                newParameters.put(e.getKey(), StringEscapeUtils.escapeJson(value));
            }
        }
        return newParameters;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Payload: RemoteConnectorExecutor.preparePayloadAndInvoke -> HttpConnector.createPayload -> validatePayload

    static final Pattern NULL_DEFAULT = Pattern.compile("\"\\$\\{parameters\\.(\\w+):-null}\"");
    static final Pattern TO_STRING = Pattern.compile("\\$\\{parameters\\.([\\w.]+)\\.toString\\(\\)}");
    static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{parameters\\.([^}]+)}");

    static String preprocessPayload(String script, String requestBody, Map<String, String> connectorParameters,
                                    String query, List<String> docs, int[] v, String order) {
        Map<String, String> parameters = new HashMap<>(connectorParameters); // connector parameters first
        parameters.putAll(runPreprocess(script, query, docs, v, order));      // then the script's output
        String payload = createPayload(requestBody, parameters, v);
        boolean skip = atLeast(v, 2, 17)
            && Boolean.parseBoolean(parameters.getOrDefault("skip_validating_missing_parameters", "false"));
        if (!skip) {
            validatePayload(payload);
        }
        return payload;
    }

    static String createPayload(String payload, Map<String, String> parameters, int[] v) {
        payload = fillNullParameters(parameters, payload);
        if (atLeast(v, 2, 17)) {
            parseParameters(parameters, payload);
        }
        // commons-text defaults: recursive substitution of values, `$` escape char, `:-` default values.
        StringSubstitutor substitutor = new StringSubstitutor(parameters, "${parameters.", "}");
        payload = substitutor.replace(payload);
        if (!isJsonOrNdjson(payload)) {
            throw new Failure("mlcommons", "Invalid payload: " + payload);
        }
        return payload;
    }

    /** HttpConnector.fillNullParameters: a quoted "${parameters.X:-null}" with X absent or null becomes null. */
    static String fillNullParameters(Map<String, String> parameters, String payload) {
        String newPayload = payload;
        Matcher m = NULL_DEFAULT.matcher(payload);
        while (m.find()) {
            String key = m.group(1);
            if (!parameters.containsKey(key) || parameters.get(key) == null) {
                newPayload = newPayload.replace("\"${parameters." + key + ":-null}\"", "null");
            }
        }
        return newPayload;
    }

    /** StringUtils.parseParameters (2.17+): `${parameters.X.toString()}` gets key "X.toString()" = processTextDoc(X). */
    static void parseParameters(Map<String, String> parameters, String payload) {
        Matcher m = TO_STRING.matcher(payload);
        while (m.find()) {
            String key = m.group(1);
            String value = parameters.get(key);
            if (value != null) {
                parameters.put(key + ".toString()", processTextDoc(new Gson(), value));
            }
        }
    }

    /** Connector.validatePayload. */
    static void validatePayload(String payload) {
        if (payload != null && payload.contains("${parameters")) {
            Matcher m = PLACEHOLDER.matcher(payload);
            List<String> names = new ArrayList<>();
            while (m.find()) {
                names.add(m.group(1));
            }
            throw new Failure("mlcommons", "Some parameter placeholder not filled in payload: " + String.join(", ", names));
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // JSON checks and parsers

    /**
     * StringUtils.isJson, approximated. ML Commons asks org.json (JSONObject, else JSONArray) and then a lenient
     * Gson parse; org.json is not packaged in Debian, so here: the trimmed text starts with { or [ and a strict
     * Gson JsonReader reads one value and reaches the end of the input. This is stricter than org.json (which
     * takes single quotes and unquoted keys); no text our scripts or tests produce falls in the difference.
     */
    static boolean isJson(String value) {
        if (value == null) {
            return false;
        }
        String t = value.trim();
        if (!(t.startsWith("{") || t.startsWith("["))) {
            return false;
        }
        try {
            readStrict(t, false);
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    static boolean isJsonOrNdjson(String payload) {
        if (isJson(payload)) {
            return true;
        }
        boolean any = false;
        for (String line : payload.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            if (!isJson(line)) {
                return false;
            }
            any = true;
        }
        return any;
    }

    /**
     * Jackson-like reading (ML Commons 3.5+, MAPPER.readTree): strict JSON, duplicate keys rejected, LinkedHashMap,
     * ArrayList, and numbers as Integer / Long / BigInteger when integral in the text, Double otherwise. Gson's own
     * strict reader does the lexing; only the number typing and the duplicate check are ours.
     */
    static Object readStrict(String text, boolean rejectDuplicates) {
        try {
            JsonReader reader = new JsonReader(new StringReader(text));
            reader.setLenient(false);
            Object value = readValue(reader, rejectDuplicates);
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                throw new IllegalArgumentException("trailing content after the JSON value");
            }
            return value;
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException(e.getMessage());
        }
    }

    static Object readValue(JsonReader r, boolean rejectDuplicates) throws java.io.IOException {
        switch (r.peek()) {
            case BEGIN_OBJECT: {
                Map<String, Object> map = new LinkedHashMap<>();
                r.beginObject();
                while (r.hasNext()) {
                    String name = r.nextName();
                    if (rejectDuplicates && map.containsKey(name)) {
                        throw new IllegalArgumentException("Duplicate field '" + name + "'");
                    }
                    map.put(name, readValue(r, rejectDuplicates));
                }
                r.endObject();
                return map;
            }
            case BEGIN_ARRAY: {
                List<Object> list = new ArrayList<>();
                r.beginArray();
                while (r.hasNext()) {
                    list.add(readValue(r, rejectDuplicates));
                }
                r.endArray();
                return list;
            }
            case STRING:
                return r.nextString();
            case NUMBER: {
                String lexeme = r.nextString();
                if (lexeme.contains(".") || lexeme.contains("e") || lexeme.contains("E")) {
                    return Double.valueOf(lexeme);
                }
                BigInteger big = new BigInteger(lexeme);
                if (big.bitLength() < 32) {
                    return big.intValue();
                }
                if (big.bitLength() < 64) {
                    return big.longValue();
                }
                return big;
            }
            case BOOLEAN:
                return r.nextBoolean();
            case NULL:
                r.nextNull();
                return null;
            default:
                throw new IllegalArgumentException("unexpected " + r.peek());
        }
    }

    /** StringUtils.fromJson(jsonStr, defaultKey): object -> its keys; array -> {defaultKey: list}; else an error. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> fromJson(String jsonStr, String defaultKey, int[] v) {
        if (atLeast(v, 3, 5)) {
            Object value;
            try {
                value = readStrict(jsonStr, true);
            } catch (RuntimeException e) {
                throw new Failure("mlcommons", "Failed to parse response: " + e.getMessage());
            }
            if (value instanceof Map) {
                return (Map<String, Object>) value;
            }
            if (value instanceof List) {
                Map<String, Object> result = new HashMap<>();
                result.put(defaultKey, value);
                return result;
            }
            throw new Failure("mlcommons", "Unsupported response type");
        }
        // Up to 3.4 (mlc@3.4.0.0): JsonParser.parseString (lenient: NaN and Infinity pass), then gson.fromJson,
        // which makes every number a Double and every object a LinkedTreeMap.
        Gson gson = mlGson(v);
        JsonElement element;
        try {
            element = JsonParser.parseString(jsonStr);
        } catch (RuntimeException e) {
            throw new Failure("mlcommons", String.valueOf(e.getMessage()));
        }
        if (element.isJsonObject()) {
            return gson.fromJson(element, Map.class);
        }
        if (element.isJsonArray()) {
            Map<String, Object> result = new HashMap<>();
            result.put(defaultKey, gson.fromJson(element, List.class));
            return result;
        }
        throw new Failure("mlcommons", "Unsupported response type");
    }

    // ---------------------------------------------------------------------------------------------------------
    // Post-process: ConnectorUtils.processOutput -> ScriptUtils.executePostProcessFunction ->
    // AbstractConnector.parseResponse -> ModelTensor.parser

    static final Set<String> DATA_TYPES = Set.of(
        "FLOAT32", "FLOAT16", "FLOAT64", "INT32", "INT64", "INT8", "UINT8", "BOOLEAN", "STRING", "UNKNOWN");

    static List<Map<String, Object>> postprocess(String script, String responseText, int[] v) {
        Map<String, Object> params = fromJson(responseText, "result", v);
        Object out = runScript(script, params);
        String response = out == null ? responseText : out.toString();
        boolean scriptReturnModelTensor = out != null && isJson(response);
        List<Map<String, Object>> tensors = new ArrayList<>();
        if (scriptReturnModelTensor) {
            Object parsed = readStrict(response, false); // XContent (Jackson) parser in ML Commons
            if (parsed instanceof List) {
                for (Object item : (List<?>) parsed) {
                    tensors.add(parseTensor(item));
                }
            } else {
                tensors.add(parseTensor(parsed));
            }
            return tensors;
        }
        Map<String, Object> tensor = new LinkedHashMap<>();
        tensor.put("name", "response");
        if (isJson(response)) {
            tensor.put("dataAsMap", fromJson(response, "response", v));
        } else {
            Map<String, Object> data = new LinkedHashMap<>();
            data.put("response", response);
            tensor.put("dataAsMap", data);
        }
        tensors.add(tensor);
        return tensors;
    }

    /** ModelTensor.parser: known keys only; `data` is kept only with a non-empty `data_type`. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> parseTensor(Object item) {
        if (!(item instanceof Map)) {
            throw new Failure("mlcommons", "Failed to parse model tensor: expected an object, got " + item);
        }
        Map<String, Object> m = (Map<String, Object>) item;
        Map<String, Object> tensor = new LinkedHashMap<>();
        String dataType = null;
        List<Object> data = null;
        for (Map.Entry<String, Object> e : m.entrySet()) {
            Object value = e.getValue();
            switch (e.getKey()) {
                case "name":
                    tensor.put("name", value == null ? null : value.toString());
                    break;
                case "data_type":
                    dataType = value == null ? null : value.toString();
                    if (dataType != null && !DATA_TYPES.contains(dataType)) {
                        throw new Failure("mlcommons",
                            "No enum constant org.opensearch.ml.common.output.model.MLResultDataType." + dataType);
                    }
                    break;
                case "shape": {
                    List<Object> shape = new ArrayList<>();
                    for (Object s : (List<Object>) value) {
                        shape.add(((Number) s).longValue());
                    }
                    tensor.put("shape", shape);
                    break;
                }
                case "data":
                    data = new ArrayList<>();
                    for (Object d : (List<Object>) value) {
                        if (!(d instanceof Number)) {
                            throw new Failure("mlcommons", "Failed to parse model tensor: data holds " + d);
                        }
                        data.add(d);
                    }
                    break;
                case "result":
                    tensor.put("result", value == null ? null : value.toString());
                    break;
                case "dataAsMap":
                    tensor.put("dataAsMap", value);
                    break;
                default:
                    break; // parser.skipChildren()
            }
        }
        if (dataType != null && !dataType.isEmpty()) {
            tensor.put("data_type", dataType);
            if (data != null && !data.isEmpty()) {
                tensor.put("data", data);
            }
        }
        return tensor;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Script compilation and execution

    static final Map<String, Method> COMPILED = new HashMap<>();
    static JavaCompiler javac;
    static StandardJavaFileManager stdFiles;
    static final int HEADER_LINES = 3;

    static Object runScript(String script, Map<String, Object> params) {
        Method run = compile(script);
        LoopBudget.count = 0;
        try {
            return run.invoke(null, params);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof Failure) {
                throw (Failure) cause;
            }
            String message = cause.getMessage();
            throw new Failure("script", cause.getClass().getSimpleName() + (message == null ? "" : ": " + message));
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    static String sha256(String text) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
            StringBuilder hex = new StringBuilder();
            for (byte b : digest) {
                hex.append(String.format("%02x", b));
            }
            return hex.toString();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static synchronized Method compile(String script) {
        String hash = sha256(script);
        Method cached = COMPILED.get(hash);
        if (cached != null) {
            return cached;
        }
        String className = "PainlessScript_" + hash.substring(0, 24);
        String source = "import java.util.*;\npublic final class " + className + " {\n"
            + "@SuppressWarnings({\"rawtypes\",\"unchecked\"}) static Object run(java.util.Map<String,Object> params) {\n"
            + instrumentLoops(script) + "\n}\n}\n";
        if (javac == null) {
            javac = ToolProvider.getSystemJavaCompiler();
            if (javac == null) {
                throw new Failure("compile", "no system Java compiler in this JVM (a JRE, not a JDK?)");
            }
            stdFiles = javac.getStandardFileManager(null, null, StandardCharsets.UTF_8);
        }
        Map<String, ByteArrayOutputStream> classes = new HashMap<>();
        JavaFileManager files = new ForwardingJavaFileManager<JavaFileManager>(stdFiles) {
            @Override
            public JavaFileObject getJavaFileForOutput(Location location, String name, JavaFileObject.Kind kind,
                                                       FileObject sibling) {
                return new SimpleJavaFileObject(URI.create("mem:///" + name.replace('.', '/') + kind.extension), kind) {
                    @Override
                    public OutputStream openOutputStream() {
                        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                        classes.put(name, bytes);
                        return bytes;
                    }
                };
            }
        };
        JavaFileObject unit = new SimpleJavaFileObject(URI.create("string:///" + className + ".java"),
                                                       JavaFileObject.Kind.SOURCE) {
            @Override
            public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                return source;
            }
        };
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        List<String> options = List.of("-classpath", System.getProperty("java.class.path"), "-nowarn",
                                       "-encoding", "UTF-8", "-proc:none");
        boolean ok = javac.getTask(null, files, diagnostics, options, null, List.of(unit)).call();
        if (!ok) {
            StringBuilder message = new StringBuilder("compile error:");
            for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
                if (d.getKind() == Diagnostic.Kind.ERROR) {
                    message.append(" line ").append(d.getLineNumber() - HEADER_LINES).append(": ")
                        .append(d.getMessage(null)).append(";");
                }
            }
            throw new Failure("compile", message.toString());
        }
        ClassLoader loader = new ClassLoader(MLCommonsGlue.class.getClassLoader()) {
            @Override
            protected Class<?> findClass(String name) throws ClassNotFoundException {
                ByteArrayOutputStream bytes = classes.get(name);
                if (bytes == null) {
                    throw new ClassNotFoundException(name);
                }
                byte[] b = bytes.toByteArray();
                return defineClass(name, b, 0, b.length);
            }
        };
        try {
            Method run = loader.loadClass(className).getDeclaredMethod("run", Map.class);
            run.setAccessible(true);
            COMPILED.put(hash, run);
            return run;
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The loop-budget transform: after the `{` that opens the body of every `for (...)`, `while (...)` and `do`,
     * insert `MLCommonsGlue.LoopBudget.tick();`. Strings and comments are skipped. The linter requires braces on
     * every loop body; a loop without one is refused here too, so no loop escapes the count. The `while` of a
     * do-while (followed by `;`) is the do loop's tail, already counted.
     */
    static String instrumentLoops(String src) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        int n = src.length();
        while (i < n) {
            char c = src.charAt(i);
            if (c == '/' && i + 1 < n && src.charAt(i + 1) == '/') {
                int end = src.indexOf('\n', i);
                end = end < 0 ? n : end;
                out.append(src, i, end);
                i = end;
            } else if (c == '/' && i + 1 < n && src.charAt(i + 1) == '*') {
                int end = src.indexOf("*/", i + 2);
                end = end < 0 ? n : end + 2;
                out.append(src, i, end);
                i = end;
            } else if (c == '"' || c == '\'') {
                int end = skipString(src, i);
                out.append(src, i, end);
                i = end;
            } else if (Character.isJavaIdentifierStart(c)) {
                int end = i;
                while (end < n && Character.isJavaIdentifierPart(src.charAt(end))) {
                    end++;
                }
                String word = src.substring(i, end);
                out.append(word);
                i = end;
                if (word.equals("for") || word.equals("while")) {
                    int j = skipSpace(src, i);
                    if (j < n && src.charAt(j) == '(') {
                        int close = matchParen(src, j);
                        int k = skipSpace(src, close);
                        if (k < n && src.charAt(k) == '{') {
                            out.append(src, i, k + 1).append(" MLCommonsGlue.LoopBudget.tick();");
                            i = k + 1;
                        } else if (!(word.equals("while") && k < n && src.charAt(k) == ';')) {
                            throw new Failure("compile", "loop body without braces (the loop budget needs them)");
                        }
                    }
                } else if (word.equals("do")) {
                    int k = skipSpace(src, i);
                    if (k < n && src.charAt(k) == '{') {
                        out.append(src, i, k + 1).append(" MLCommonsGlue.LoopBudget.tick();");
                        i = k + 1;
                    } else {
                        throw new Failure("compile", "loop body without braces (the loop budget needs them)");
                    }
                }
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    static int skipString(String src, int start) {
        char quote = src.charAt(start);
        int i = start + 1;
        while (i < src.length()) {
            char c = src.charAt(i);
            if (c == '\\') {
                i += 2;
            } else if (c == quote) {
                return i + 1;
            } else {
                i++;
            }
        }
        return src.length();
    }

    static int skipSpace(String src, int i) {
        while (i < src.length() && Character.isWhitespace(src.charAt(i))) {
            i++;
        }
        return i;
    }

    static int matchParen(String src, int open) {
        int depth = 0;
        int i = open;
        while (i < src.length()) {
            char c = src.charAt(i);
            if (c == '"' || c == '\'') {
                i = skipString(src, i);
                continue;
            }
            if (c == '(') {
                depth++;
            } else if (c == ')') {
                depth--;
                if (depth == 0) {
                    return i + 1;
                }
            }
            i++;
        }
        return src.length();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Request loop

    static Map<String, String> stringMap(JsonObject obj) {
        Map<String, String> map = new HashMap<>();
        if (obj != null) {
            for (Map.Entry<String, JsonElement> e : obj.entrySet()) {
                map.put(e.getKey(), e.getValue().isJsonNull() ? null : e.getValue().getAsString());
            }
        }
        return map;
    }

    static List<String> stringList(JsonArray arr) {
        List<String> list = new ArrayList<>();
        for (JsonElement e : arr) {
            list.add(e.getAsString());
        }
        return list;
    }

    static String order(JsonObject req) {
        return req.has("escape_order") ? req.get("escape_order").getAsString() : "released";
    }

    /** The query text, or null for a text-docs (embedding) input. */
    static String query(JsonObject req) {
        return req.has("query") && !req.get("query").isJsonNull() ? req.get("query").getAsString() : null;
    }

    static Object dispatch(JsonObject req) {
        String op = req.get("op").getAsString();
        switch (op) {
            case "ping":
                return "pong";
            case "compile":
                compile(req.get("script").getAsString());
                return "ok";
            case "run_preprocess":
                return runPreprocess(req.get("script").getAsString(), query(req),
                                     stringList(req.getAsJsonArray("docs")), version(req), order(req));
            case "preprocess_payload":
                return preprocessPayload(req.get("script").getAsString(), req.get("request_body").getAsString(),
                                         stringMap(req.getAsJsonObject("connector_parameters")),
                                         query(req), stringList(req.getAsJsonArray("docs")),
                                         version(req), order(req));
            case "postprocess":
                return postprocess(req.get("script").getAsString(), req.get("response").getAsString(), version(req));
            default:
                throw new IllegalArgumentException("unknown op " + op);
        }
    }

    public static void main(String[] args) throws Exception {
        PrintStream replies = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.US_ASCII);
        System.setOut(System.err); // nothing but replies on the protocol stream
        BufferedReader requests = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        Base64.Decoder decoder = Base64.getDecoder();
        Base64.Encoder encoder = Base64.getEncoder();
        for (String line = requests.readLine(); line != null; line = requests.readLine()) {
            Map<String, Object> reply = new LinkedHashMap<>();
            try {
                JsonObject req = JsonParser.parseString(new String(decoder.decode(line), StandardCharsets.UTF_8))
                    .getAsJsonObject();
                reply.put("ok", true);
                reply.put("result", dispatch(req));
            } catch (Failure f) {
                reply.put("ok", false);
                reply.put("kind", f.kind);
                reply.put("error", f.getMessage());
            } catch (Throwable t) {
                reply.put("ok", false);
                reply.put("kind", "internal");
                reply.put("error", t.toString());
            }
            replies.println(encoder.encodeToString(WIRE.toJson(reply).getBytes(StandardCharsets.UTF_8)));
        }
    }
}
