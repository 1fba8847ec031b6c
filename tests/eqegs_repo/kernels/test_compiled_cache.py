"""numba's disk cache of the compiled kernels lives in the user's cache folder, never inside the
installed package (docs/robustness.md, numba row; docs/configuration.md).

Each case imports a copy of the package (writable, as a user's site-packages is) in a fresh
process, runs a compiled kernel, and looks at what appeared where.
"""
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytest.importorskip("numba")

RUN_A_KERNEL = """
import numpy as np
from eqegs_repo.kernels.reconstruction import _frame_sum_kernel, add_frame_sums
frames = np.arange(12, dtype=np.uint16).reshape(3, 4)
running, totals = np.zeros(4, np.uint64), np.zeros(3, np.uint64)
add_frame_sums(frames, running, totals)
assert _frame_sum_kernel() is not None, "numba did not compile the kernel"
print(running.tolist(), totals.tolist())
"""


@pytest.fixture
def installed(tmp_path):
    """A copy of eqegs_repo and spice in ``tmp_path/site``, without any __pycache__."""
    site = tmp_path / "site"
    for package in ("eqegs_repo", "spice"):
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    return site


def run_kernel(site, tmp_path, **env):
    """Run a compiled kernel with the package from ``site``; returns every file under ``site``."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "NUMBA_DISABLE_JIT")}
    environment.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", HOME=str(home), **env)
    done = subprocess.run([sys.executable, "-c", RUN_A_KERNEL], env=environment, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[12, 15, 18, 21] [6, 22, 38]"
    return sorted(str(path.relative_to(site)) for path in site.rglob("*") if path.is_file())


def numba_files(folder):
    return sorted(path.name for path in folder.rglob("*") if path.suffix in (".nbi", ".nbc"))


def test_the_cache_lands_in_the_user_cache_folder_not_in_the_package(installed, tmp_path):
    before = sorted(str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file())
    after = run_kernel(installed, tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert after == before  # nothing written inside the package
    cached = numba_files(tmp_path / "xdg" / "eqegs_repo" / "numba")
    assert any(name.endswith(".nbi") for name in cached) and any(name.endswith(".nbc") for name in cached)
    assert not (tmp_path / "home" / ".cache" / "numba").exists()  # not numba's own user folder


def test_without_xdg_cache_home_the_cache_is_under_home(installed, tmp_path):
    run_kernel(installed, tmp_path)
    assert numba_files(tmp_path / "home" / ".cache" / "eqegs_repo" / "numba")
    assert not numba_files(installed)


def test_numba_cache_dir_set_by_the_user_wins(installed, tmp_path):
    run_kernel(installed, tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "mine"),
               XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert numba_files(tmp_path / "mine")
    assert not (tmp_path / "xdg").exists() and not numba_files(installed)


def test_no_writable_cache_folder_compiles_without_disk_cache(installed, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # a folder under a file cannot be made, even by root
    before = sorted(str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file())
    after = run_kernel(installed, tmp_path, XDG_CACHE_HOME=str(blocker / "cache"))
    assert after == before  # not in the package either (numba alone would fall back to it)
    assert not numba_files(tmp_path)


def test_the_numba_folder_is_numba_in_the_package_user_cache_folder(tmp_path, monkeypatch):
    from eqegs_repo.cooking.cache import user_cache_folder
    from eqegs_repo.kernels.compiled import numba_cache_dir

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    for xdg in (str(tmp_path / "xdg"), ""):
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert numba_cache_dir() == str(tmp_path / ("xdg" if xdg else "home/.cache") / "eqegs_repo" / "numba")
        assert numba_cache_dir() == f"{user_cache_folder()}/numba"
