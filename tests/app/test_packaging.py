"""A plain `pip install .` must work: the wheel carries every module, template and migration, and
the installed command runs from anywhere (here: `warroom demo`, outside the repository)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [found] = out.glob("warroom-*.whl")
    return found


def shipped_sources() -> set[str]:
    """What the wheel must hold: every module of the packages, every template, every migration."""
    wanted = {str(p.relative_to(REPO)) for p in (REPO / "bot").rglob("*.py")}
    wanted |= {str(p.relative_to(REPO)) for p in (REPO / "storage").rglob("*.py")}
    wanted |= {
        "bot/templates/" + str(p.relative_to(REPO / "templates"))
        for p in (REPO / "templates").rglob("*.j2")
    }
    return {name for name in wanted if "__pycache__" not in name}


def test_the_wheel_holds_every_module_template_and_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(shipped_sources() - names)
    assert not missing, f"not in the wheel: {missing}"
    assert "storage/migrations/script.py.mako" in names


def test_the_installed_command_runs_the_demo_outside_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    # Dependencies come from the test environment's site-packages, named in a .pth file (which
    # does not run that directory's own .pth files, so the editable checkout stays out of it);
    # warroom itself comes only from the wheel.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("PYTHONPATH", None)
    where = subprocess.run(
        [str(python), "-c", "import bot, storage; print(bot.__file__, storage.__file__)"],
        cwd=elsewhere,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert str(REPO) not in where.stdout, f"imported the checkout, not the wheel: {where.stdout}"

    demo = subprocess.run(
        [str(env_dir / "bin" / "warroom"), "demo", "--quiet", "--out", str(elsewhere / "out")],
        cwd=elsewhere,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert (elsewhere / "out" / "INC-1.html").is_file()
    assert "Checkout API returning 500s" in (elsewhere / "out" / "INC-1.md").read_text()
