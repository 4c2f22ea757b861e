"""ruff and mypy (strict on the package and tools/) are part of the test run, as in the CI workflow."""

from __future__ import annotations

import subprocess
import sys

from tools.specdoc import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=600)


def test_ruff_finds_nothing():
    proc = _run("ruff", "check", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_strict_finds_nothing():
    proc = _run("mypy")  # files and strictness come from pyproject.toml
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
