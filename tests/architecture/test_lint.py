"""Style that holds by tooling, not by care: ruff's lint and the type checker are clean."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing():
    done = run(BIN / "ruff", "check", "--no-cache", "plugin", "connectors", "tests", "bench")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_type_checker_finds_nothing():
    """mypy over plugin/ and connectors/ with the settings in pyproject.toml."""
    done = run(sys.executable, "-m", "mypy", "plugin", "connectors")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
