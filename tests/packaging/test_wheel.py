"""The wheel is the product: built, installed with the locked versions into a fresh virtual
environment, and run from a folder outside the checkout, as a production image does it.

Nothing here imports the checkout: every command runs the installed `likely` with a clean
environment, so a file the app reads at run time but the wheel lacks fails the test.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = (ROOT / "manifest.json").read_bytes()


def run(args: list, cwd: Path, env: dict | None = None, timeout: int = 600) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel, built with the locked build backend (no network, no isolation)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT], cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> dict:
    """A fresh venv holding the runtime lock and the wheel, and a clean environment to run it."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", venv], cwd=venv)
    pip = venv / "bin" / "pip"
    run([pip, "install", "--quiet", "--require-hashes", "--no-deps", "-r", ROOT / "requirements" / "runtime.txt"],
        cwd=venv)
    run([pip, "install", "--quiet", "--no-deps", next(dist.glob("*.whl"))], cwd=venv)
    outside = tmp_path_factory.mktemp("elsewhere")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("LIKELY_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", HOME=str(outside),
               LIKELY_DATABASE_URL=f"sqlite:///{outside / 'likely.sqlite'}")
    return {"venv": venv, "cwd": outside, "env": env}


def test_the_sdist_and_wheel_carry_the_manifest_unchanged(dist):
    """One source: the package's manifest is the top-level manifest.json, byte for byte."""
    with zipfile.ZipFile(next(dist.glob("*.whl"))) as wheel:
        assert wheel.read("plugin/manifest.json") == MANIFEST
        names = set(wheel.namelist())
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.endswith("/plugin/manifest.json"))
        assert sdist.extractfile(member).read() == MANIFEST
    for needed in ("plugin/templates/pages/base.html", "plugin/static/likely.css",
                   "plugin/store/migrations/env.py", "plugin/store/migrations/versions/0001_foundation.py"):
        assert needed in names, f"the wheel lacks {needed}"


def test_the_checkout_manifest_is_one_file():
    """plugin/manifest.json in the checkout is the top-level file (a link), not a copy to keep in step."""
    assert (ROOT / "plugin" / "manifest.json").read_bytes() == MANIFEST
    assert (ROOT / "plugin" / "manifest.json").resolve() == (ROOT / "manifest.json").resolve()


def test_the_installed_wheel_runs_from_outside_the_checkout(installed):
    likely, cwd, env = installed["venv"] / "bin" / "likely", installed["cwd"], installed["env"]
    where = run([installed["venv"] / "bin" / "python", "-c", "import plugin; print(plugin.__file__)"], cwd, env)
    assert str(installed["venv"]) in where and str(ROOT) not in where
    assert "demo" in run([likely, "--help"], cwd, env)
    run([likely, "db", "upgrade"], cwd, env)
    demo = run([likely, "demo", "--no-serve", "--users", "3000"], cwd, env)
    assert "Prediction Quality" in demo and "prediction page:" in demo
    run([installed["venv"] / "bin" / "pip", "check"], cwd, env)


def test_the_installed_wheel_serves_its_pages_and_contract(installed):
    """Templates, static files and the OpenAPI document come from the installed package."""
    script = (
        "from plugin import create_app\n"
        "import os\n"
        "app = create_app({'database_url': os.environ['LIKELY_DATABASE_URL']})\n"
        "client = app.test_client()\n"
        "for path in ('/login', '/static/likely.css', '/openapi.json'):\n"
        "    response = client.get(path)\n"
        "    assert response.status_code == 200, (path, response.status_code)\n"
        "print('ok')\n")
    run([installed["venv"] / "bin" / "likely", "db", "upgrade"], installed["cwd"], installed["env"])
    assert run([installed["venv"] / "bin" / "python", "-c", script], installed["cwd"], installed["env"]).strip() == "ok"
