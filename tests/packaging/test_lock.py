"""The lock files agree with pyproject.toml, so a fresh machine installs what CI tested.

`requirements/runtime.txt` and `requirements/test.txt` are made by `make lock` (uv pip compile);
both README commands install them with hashes. A dependency added to, removed from or re-ranged
in pyproject.toml without `make lock` fails here with what to do.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
TEST_LOCK = ROOT / "requirements" / "test.txt"
TOOLS_IN = ROOT / "requirements" / "tools.in"
FROM_PYPROJECT = "likely (pyproject.toml)"
FROM_TOOLS = "-r requirements/tools.in"
REMEDY = "run `make lock` and commit pyproject.toml with requirements/"


def parse_lock(path: Path) -> dict[str, dict]:
    """{name: {"version", "hashes", "via"}} from a uv / pip-compile lock with hashes."""
    pins: dict[str, dict] = {}
    current: dict | None = None
    for line in path.read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if pin:
            current = {"version": pin.group(3), "hashes": 0, "via": set()}
            pins[canonicalize_name(pin.group(1))] = current
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith("--hash=sha256:"):
            current["hashes"] += 1
        elif stripped.startswith("# via "):
            current["via"].add(stripped[len("# via "):])
        elif stripped.startswith("#   "):
            current["via"].add(stripped[len("#   "):])
    return pins


def declared() -> tuple[list[Requirement], list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    test = [Requirement(r) for r in project["optional-dependencies"]["test"]]
    tools = [Requirement(line) for line in TOOLS_IN.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return runtime, test, tools


def disagreements(wanted: list[Requirement], lock: dict[str, dict], lock_name: str,
                  sources: set[str]) -> list[str]:
    problems = []
    names = {canonicalize_name(r.name) for r in wanted}
    for requirement in wanted:
        pin = lock.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement} is declared but not in {lock_name}")
        elif not requirement.specifier.contains(pin["version"], prereleases=True):
            problems.append(f"{lock_name} pins {requirement.name}=={pin['version']}, outside {requirement}")
        elif not pin["via"] & sources:
            problems.append(f"{lock_name} has {requirement.name} only as a dependency of another package")
    for name, pin in lock.items():
        if pin["via"] & sources and name not in names:
            problems.append(f"{lock_name} pins {name} as a direct dependency, but it is no longer declared")
    return problems


def test_every_runtime_dependency_is_locked_in_its_range():
    runtime, _, _ = declared()
    problems = disagreements(runtime, parse_lock(RUNTIME_LOCK), "requirements/runtime.txt", {FROM_PYPROJECT})
    assert not problems, f"pyproject.toml and the lock disagree ({REMEDY}):\n" + "\n".join(problems)


def test_every_test_and_tool_dependency_is_locked_in_its_range():
    runtime, test, tools = declared()
    lock = parse_lock(TEST_LOCK)
    problems = disagreements(runtime + test, lock, "requirements/test.txt", {FROM_PYPROJECT})
    problems += disagreements(tools, lock, "requirements/test.txt", {FROM_TOOLS})
    assert not problems, f"pyproject.toml and the lock disagree ({REMEDY}):\n" + "\n".join(problems)


def test_the_test_lock_runs_the_runtime_lock_versions():
    """CI tests exactly the versions a production install gets."""
    runtime, test = parse_lock(RUNTIME_LOCK), parse_lock(TEST_LOCK)
    differ = [f"{name}: runtime {pin['version']}, test {test.get(name, {}).get('version')}"
              for name, pin in runtime.items() if test.get(name, {}).get("version") != pin["version"]]
    assert not differ, f"the two locks disagree ({REMEDY}):\n" + "\n".join(differ)


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, TEST_LOCK], ids=["runtime", "test"])
def test_every_pin_is_exact_and_hashed(lock):
    pins = parse_lock(lock)
    assert pins, f"{lock} pins nothing"
    unhashed = sorted(name for name, pin in pins.items() if pin["hashes"] == 0)
    assert not unhashed, f"{lock.name} has pins without hashes ({REMEDY}): {unhashed}"


def test_the_disagreement_check_catches_a_dependency_missing_from_the_lock():
    """The check itself: a package declared but not locked, and one locked but not declared."""
    lock = parse_lock(RUNTIME_LOCK)
    runtime, _, _ = declared()
    added = runtime + [Requirement("left-pad-likely-test>=1")]
    assert any("left-pad-likely-test" in p for p in disagreements(added, lock, "runtime", {FROM_PYPROJECT}))
    dropped = [r for r in runtime if canonicalize_name(r.name) != "flask"]
    assert any("flask" in p for p in disagreements(dropped, lock, "runtime", {FROM_PYPROJECT}))
    narrowed = [Requirement("flask<1") if canonicalize_name(r.name) == "flask" else r for r in runtime]
    assert any("outside flask<1" in p for p in disagreements(narrowed, lock, "runtime", {FROM_PYPROJECT}))
