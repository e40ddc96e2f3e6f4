#!/usr/bin/env bash
# Compile the app's plain-Java core (no Android imports) and its JUnit 4 tests with
# javac, then run them on the JVM. Needs only a JDK and Debian's junit4 + hamcrest
# jars: no Android SDK, no Gradle, no network. Used by .ci/run and tests/test_android_jvm.py.
#
#   bash android_harness/test-jvm.sh
#
# Overrides: JAVA_HOME (picks javac/java), JUNIT_JAR, HAMCREST_JAR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
app="$here/app/src"

if [ -n "${JAVA_HOME:-}" ]; then
  javac="$JAVA_HOME/bin/javac"; java="$JAVA_HOME/bin/java"
else
  javac="$(command -v javac || true)"; java="$(command -v java || true)"
fi
if [ -z "$javac" ] || [ ! -x "$javac" ] || [ -z "$java" ] || [ ! -x "$java" ]; then
  echo "test-jvm.sh: javac/java not found: install a JDK (Debian: apt-get install default-jdk-headless)" >&2
  exit 2
fi

first_existing() { for f in "$@"; do [ -f "$f" ] && { echo "$f"; return 0; }; done; return 1; }
junit="${JUNIT_JAR:-$(first_existing /usr/share/java/junit4.jar /usr/share/java/junit4-4.13.2.jar || true)}"
hamcrest="${HAMCREST_JAR:-$(first_existing /usr/share/java/hamcrest-core.jar /usr/share/java/hamcrest.jar /usr/share/java/hamcrest-all.jar || true)}"
if [ -z "$junit" ] || [ ! -f "$junit" ] || [ -z "$hamcrest" ] || [ ! -f "$hamcrest" ]; then
  echo "test-jvm.sh: JUnit 4 / hamcrest jars not found (Debian: apt-get install junit4; or set JUNIT_JAR and HAMCREST_JAR)" >&2
  exit 2
fi

out="$(mktemp -d "${TMPDIR:-/tmp}/kwskd-jvm.XXXXXX")"
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/main" "$out/test"

# Only the core package: everything else in the app needs android.jar.
mapfile -t main_src < <(find "$app/main/java/org/kwskd/app/core" -name '*.java' | sort)
mapfile -t test_src < <(find "$app/test/java" -name '*.java' | sort)
"$javac" -nowarn -encoding UTF-8 --release 11 -d "$out/main" "${main_src[@]}"
"$javac" -nowarn -encoding UTF-8 --release 11 -cp "$out/main:$junit" -d "$out/test" "${test_src[@]}"

# Type-check the Android classes against compile-only stubs (android_harness/stubs/, NOT the
# real SDK): catches core API changes that would break the app. The real check is a Gradle build.
mkdir -p "$out/stubcheck"
mapfile -t stub_src < <(find "$here/stubs" -name '*.java' | sort)
mapfile -t app_src < <(find "$app/main/java" -name '*.java' | sort)
"$javac" -nowarn -encoding UTF-8 --release 11 -d "$out/stubcheck" "${stub_src[@]}" "${app_src[@]}"
echo "test-jvm.sh: ${#app_src[@]} app sources type-check against the stubs (not the real Android SDK)"

# Test classes: every *Test.java, by its package path.
classes=()
for f in "${test_src[@]}"; do
  case "$f" in
    *Test.java) rel="${f#"$app/test/java/"}"; rel="${rel%.java}"; classes+=("${rel//\//.}") ;;
  esac
done
echo "test-jvm.sh: $("$java" -version 2>&1 | head -1); running ${#classes[@]} test classes"
"$java" -cp "$out/main:$out/test:$app/test/resources:$junit:$hamcrest" org.junit.runner.JUnitCore "${classes[@]}"
