"""The repository has a `platform/` folder; it must never shadow the standard library module."""

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def test_import_platform_from_repository_root_is_the_standard_library():
    out = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.__file__); print(platform.system())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert Path(out[0]).resolve().parent == STDLIB
    assert out[1]  # e.g. "Linux"


def test_import_platform_inside_the_running_app_is_the_standard_library(settings):
    import platform

    import config.settings

    assert Path(platform.__file__).resolve().parent == STDLIB
    assert platform.system() != ""
    assert Path(config.settings.__file__).resolve().parent == ROOT / "platform" / "config"
