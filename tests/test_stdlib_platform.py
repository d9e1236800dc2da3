"""The repository has a `platform/` folder; it must never shadow the standard library module.

Both checks run in a fresh interpreter: inside pytest's own process the standard `platform` was
imported long before any test runs, so a check there would pass whatever the repository did."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()

# Loads the settings and every app (as `manage.py` does, with the repository root first on the
# path) before anything imports `platform`, then reports which `platform` the process got.
AFTER_THE_APPS = """
import json, os, sys
first = "platform" in sys.modules
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
import platform
import config.settings
print(json.dumps({"imported_first": first, "platform": platform.__file__, "system": platform.system(),
                  "settings": config.settings.__file__}))
"""


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


def test_import_platform_after_the_settings_and_apps_is_the_standard_library():
    out = subprocess.run(
        [sys.executable, "-c", AFTER_THE_APPS], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    found = json.loads(out[-1])

    assert found["imported_first"] is False  # else the check below would prove nothing
    assert Path(found["platform"]).resolve().parent == STDLIB
    assert found["system"] != ""
    assert Path(found["settings"]).resolve().parent == ROOT / "platform" / "config"
