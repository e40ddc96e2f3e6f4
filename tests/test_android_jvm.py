"""Run the Android app's plain-Java core tests on the JVM (android_harness/test-jvm.sh).

The JUnit suite includes the golden-file comparisons against kws_kd.app_logic
(whole-clip files: GoldenTest; streaming files with carried state: StreamingGoldenTest),
so this is where "Java computes what Python computes" is enforced from pytest.
Skips with a message when no JDK or no JUnit 4 jar is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "android_harness"
JUNIT = [Path("/usr/share/java/junit4.jar")]
HAMCREST = [Path("/usr/share/java/hamcrest-core.jar"), Path("/usr/share/java/hamcrest.jar")]


def _missing() -> str | None:
    if not (shutil.which("javac") or os.environ.get("JAVA_HOME")):
        return "javac not installed (Debian: default-jdk-headless)"
    if not (os.environ.get("JUNIT_JAR") or any(p.is_file() for p in JUNIT)):
        return "JUnit 4 jar not installed (Debian: junit4)"
    if not (os.environ.get("HAMCREST_JAR") or any(p.is_file() for p in HAMCREST)):
        return "hamcrest jar not installed (Debian: junit4 pulls libhamcrest-java)"
    return None


@pytest.mark.skipif(_missing() is not None, reason=f"JVM tests skipped: {_missing()}")
def test_jvm_core_tests_pass():
    proc = subprocess.run(["bash", str(HARNESS / "test-jvm.sh")], capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    match = re.search(r"^OK \((\d+) tests?\)", proc.stdout, re.M)
    assert match, output[-4000:]
    assert int(match.group(1)) >= 25  # the suite really ran
    classes = re.search(r"running (\d+) test classes", proc.stdout)
    assert classes and int(classes.group(1)) >= 4  # GoldenTest, StreamingGoldenTest, CoreTest, SidecarTest


def test_test_jvm_script_is_executable_for_ci():
    """.ci/run only calls the script when it is executable."""
    assert os.access(HARNESS / "test-jvm.sh", os.X_OK)
