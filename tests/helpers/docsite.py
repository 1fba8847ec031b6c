"""Building the documentation site for the tests (``mkdocs build --strict``)."""
import importlib.util
import os
import subprocess
import sys


def build(config, site):
    """Run ``mkdocs build --strict -f config -d site``; returns the CompletedProcess (output in
    .stdout and .stderr). Without the material theme the build uses mkdocs' default theme."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    if importlib.util.find_spec("material") is None:
        command += ["-t", "mkdocs"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, stdin=subprocess.DEVNULL)
