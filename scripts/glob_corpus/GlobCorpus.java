// Generates the Java glob corpus in tests/reference/java-glob-corpus.jsonl.gz: random patterns,
// biased toward the constructs where Java's glob dialect differs from other globs, each with
// keys labelled by Java's own PathMatcher, the way Polaris (after Druid's S3 input source) reads
// `pattern`: FileSystems.getDefault().getPathMatcher("glob:" + pattern).matches(Paths.get(key)).
//
// Regenerate with `make glob-corpus` (needs a JDK; the tests read the committed file and never
// need Java). Arguments: seed, number of patterns. One JSON object per line:
//   {"pattern": P, "error": DESCRIPTION}                  Java refuses P (PatternSyntaxException)
//   {"pattern": P, "keys": [[KEY, MATCHES], ...]}         Java's verdict for each key
import java.nio.file.FileSystems;
import java.nio.file.Paths;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.PatternSyntaxException;

public final class GlobCorpus {
    // Characters that matter to Java's glob or regex translation, and a few ordinary ones.
    private static final String PLAIN = "ab/.-_";
    private static final String SPECIAL = "^!]}{,&\\[- \n\t\u00e9$|()+";
    private static final String CLASS_CHARS = "ab-^!]\\&/[z0.";
    private static final String KEY_CHARS = "ab/.-_^!]}{,&\\[ \n\u00e9z0";
    private static final String EMOJI = "\ud83d\ude00";

    private final Random random;

    private GlobCorpus(long seed) {
        random = new Random(seed);
    }

    private boolean chance(int percent) {
        return random.nextInt(100) < percent;
    }

    private char pick(String chars) {
        return chars.charAt(random.nextInt(chars.length()));
    }

    private String literal() {
        if (chance(3)) {
            return EMOJI;
        }
        return String.valueOf(chance(80) ? pick(PLAIN) : pick(SPECIAL));
    }

    private String bracket() {
        StringBuilder out = new StringBuilder("[");
        int start = random.nextInt(10);
        if (start == 0) {
            out.append('^');
        } else if (start < 3) {
            out.append('!');
        }
        if (chance(15)) {
            out.append('-');
        }
        int items = random.nextInt(4);
        for (int i = 0; i < items; i++) {
            out.append(pick(CLASS_CHARS));
            if (chance(30)) {
                out.append('-').append(pick(CLASS_CHARS));
            }
        }
        if (chance(92)) {
            out.append(']');
        }
        return out.toString();
    }

    private String simple(int depth) {
        int kind = random.nextInt(100);
        if (kind < 40) {
            return literal();
        } else if (kind < 52) {
            return "*";
        } else if (kind < 60) {
            return "**";
        } else if (kind < 67) {
            return "?";
        } else if (kind < 80) {
            return bracket();
        } else if (kind < 88) {
            return "\\" + (chance(70) ? pick(SPECIAL + "*?") : pick(PLAIN + "dQE"));
        } else if (kind < 97 && depth < 2) {
            return group(depth + 1);
        }
        return String.valueOf(pick("}],"));
    }

    private String group(int depth) {
        StringBuilder out = new StringBuilder("{");
        int alternatives = random.nextInt(4);
        for (int a = 0; a < alternatives; a++) {
            if (a > 0) {
                out.append(',');
            }
            int length = random.nextInt(3);
            for (int i = 0; i < length; i++) {
                out.append(simple(depth));
            }
        }
        if (chance(93)) {
            out.append('}');
        }
        return out.toString();
    }

    private String pattern() {
        StringBuilder out = new StringBuilder();
        int length = 1 + random.nextInt(6);
        for (int i = 0; i < length; i++) {
            out.append(simple(0));
        }
        if (chance(3)) {
            out.append('\\');
        }
        return out.toString();
    }

    // A key drawn from the pattern's text, read naively (so often, not always, a match).
    private String derived(String pattern) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < pattern.length()) {
            char c = pattern.charAt(i);
            if (c == '*') {
                boolean twice = i + 1 < pattern.length() && pattern.charAt(i + 1) == '*';
                int n = random.nextInt(3);
                for (int k = 0; k < n; k++) {
                    out.append(twice && chance(40) ? '/' : pick("ab."));
                }
                i += twice ? 2 : 1;
            } else if (c == '?') {
                out.append(pick("ab.^\n"));
                i++;
            } else if (c == '[') {
                int end = pattern.indexOf(']', i + 2);
                String body = end < 0 ? pattern.substring(i + 1) : pattern.substring(i + 1, end);
                out.append(body.isEmpty() ? 'a' : body.charAt(random.nextInt(body.length())));
                i = end < 0 ? pattern.length() : end + 1;
            } else if (c == '{' || c == '}' || c == ',') {
                if (c == ',' || (c == '{' && chance(50))) {
                    int skip = pattern.indexOf('}', i);
                    i = skip < 0 ? pattern.length() : skip + 1;
                } else {
                    i++;
                }
            } else if (c == '\\' && i + 1 < pattern.length()) {
                out.append(pattern.charAt(i + 1));
                i += 2;
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    private String randomKey() {
        StringBuilder out = new StringBuilder();
        int length = random.nextInt(8);
        for (int i = 0; i < length; i++) {
            out.append(chance(4) ? EMOJI : String.valueOf(pick(KEY_CHARS)));
        }
        return out.toString();
    }

    private String spelling(String key) {
        // Paths.get folds doubled slashes and drops a trailing one: try those spellings too.
        int choice = random.nextInt(10);
        if (choice == 0) {
            return key.replace("/", "//");
        } else if (choice == 1) {
            return key + "/";
        }
        return key;
    }

    private String line() {
        String pattern = pattern();
        PathMatcher matcher;
        try {
            matcher = FileSystems.getDefault().getPathMatcher("glob:" + pattern);
        } catch (PatternSyntaxException error) {
            return "{\"pattern\": " + json(pattern) + ", \"error\": " + json(error.getDescription()) + "}";
        }
        List<String> keys = new ArrayList<>();
        int count = 5 + random.nextInt(5);
        while (keys.size() < count) {
            String key = spelling(chance(55) ? derived(pattern) : randomKey());
            if (!keys.contains(key) && key.indexOf('\0') < 0) {
                keys.add(key);
            }
        }
        StringBuilder out = new StringBuilder("{\"pattern\": " + json(pattern) + ", \"keys\": [");
        for (int k = 0; k < keys.size(); k++) {
            String key = keys.get(k);
            out.append(k == 0 ? "" : ", ").append('[').append(json(key)).append(", ");
            out.append(matcher.matches(Paths.get(key))).append(']');
        }
        return out.append("]}").toString();
    }

    private static String json(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20 || c > 0x7e) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) {
        long seed = Long.parseLong(args[0]);
        int patterns = Integer.parseInt(args[1]);
        GlobCorpus corpus = new GlobCorpus(seed);
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < patterns; i++) {
            out.append(corpus.line()).append('\n');
        }
        System.out.print(out);
    }
}
