"""Cooking that absurd values, foreign code, a read-only install or a broken cache entry cannot
hurt (issue 12 rows 12-17; docs/robustness.md)."""
import errno
import io
import json
import os

import numpy as np
import pytest

from eqegs_repo.cli.main import main
from eqegs_repo.cooking import cache as cache_module
from eqegs_repo.cooking import calibration, limits
from eqegs_repo.errors import BadInput
from spice import SpiceError
from tests.helpers.cooktrees import PROPOSAL, seeded_tree

VELOCITY_PY = """
import pathlib
pathlib.Path(__file__).with_name("ran").write_text("velocity code ran")

def measured(measured, n_frames):
    return {factor} * measured

CALIBRATIONS = {{1: measured}}
"""
ANGLE_PY = "import numpy as np\nCALIBRATIONS = {0: lambda two_theta: np.ones_like(two_theta)}\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return seeded_tree(tmp_path_factory.mktemp("robust_cooking"))


def sample(repo):
    return repo[PROPOSAL]["S001"]


# --- row 12: calibration code runs only from folders the user allowed ------------------------
def _calibration_folder(path, factor=1.0):
    path.mkdir()
    (path / "calibration_velocity.py").write_text(VELOCITY_PY.format(factor=factor))
    (path / "calibration_angle.py").write_text(ANGLE_PY)
    return path


def test_calibration_code_named_by_spice_runs_only_from_allowed_folders(tree, tmp_path, monkeypatch):
    monkeypatch.delenv(calibration.TRUST_VARIABLE, raising=False)
    folder = _calibration_folder(tmp_path / "calib")
    prop = tree[PROPOSAL]
    prop.spice.seed("calibration", "S001", folder=str(folder))
    try:
        with pytest.raises(BadInput, match=rf"calibration.folder = '{folder}' \(proposal S001 r1 .*\) is not a "
                                           r"folder you allowed to run calibration code from \(allowed: none\)"):
            sample(tree).cook(use_cache=False)
        assert not (folder / "ran").exists()  # refused before the code was read
        # a link inside an allowed folder that leads outside it is not allowed either
        allowed = tmp_path / "allowed"
        allowed.mkdir()
        os.symlink(folder, allowed / "link")
        monkeypatch.setenv(calibration.TRUST_VARIABLE, f"{tmp_path / 'elsewhere'}{os.pathsep}{allowed}")
        prop.spice.update("calibration", "S001", folder=str(allowed / "link"))
        with pytest.raises(BadInput, match="is not a folder you allowed"):
            sample(tree).cook(use_cache=False)
        assert not (folder / "ran").exists()
        monkeypatch.setenv(calibration.TRUST_VARIABLE, str(tmp_path))
        assert sample(tree).cook(use_cache=False).attrs["calibration"]["velocity"].endswith("#1")
        assert (folder / "ran").read_text() == "velocity code ran"
        monkeypatch.delenv(calibration.TRUST_VARIABLE)
        tree.trusted_calibration_dirs = [str(folder)]   # the repository setting does the same
        (folder / "ran").unlink()
        sample(tree).cook(use_cache=False)
        assert (folder / "ran").exists()
    finally:
        tree.trusted_calibration_dirs = []
        prop.spice.erase("calibration", "S001")


def test_a_changed_calibration_file_is_never_served_from_the_cache(tree, tmp_path):
    folder = _calibration_folder(tmp_path / "calib")
    prop = tree[PROPOSAL]
    tree.trusted_calibration_dirs = [str(tmp_path)]
    prop.spice.seed("calibration", "S001", folder=str(folder))
    try:
        first = sample(tree).cooked
        assert sample(tree).cache_status()["e_spectrum_and_isf"] == "fresh"
        (folder / "calibration_velocity.py").write_text(VELOCITY_PY.format(factor=2.0))
        assert sample(tree).cache_status()["e_spectrum_and_isf"] == "stale"
        with pytest.raises(BadInput, match="calibration_velocity.py changed since it was recorded"):
            sample(tree).cooked
        prop.spice.update("calibration", "S001", folder=str(folder))  # records the new hashes
        again = sample(tree).cooked
        np.testing.assert_allclose(again.velocity.values, 2 * first.velocity.values)
    finally:
        tree.trusted_calibration_dirs = []
        prop.spice.erase("calibration", "S001")


# --- row 13: numba without a place for its cache ---------------------------------------------
def test_cooking_works_when_numba_has_no_cache_locator(tree, monkeypatch):
    numba_caching = pytest.importorskip("numba.core.caching")
    from eqegs_repo.kernels import reconstruction
    from eqegs_repo.kernels.q_integration import engines

    expected = sample(tree).cook("q_integration", use_cache=False)
    kernels = (reconstruction._frame_sum_kernel, engines.labelled_sum_kernel)
    monkeypatch.setattr(numba_caching.CacheImpl, "_locator_classes", [])  # $HOME and the package read-only
    for kernel in kernels:
        kernel.cache_clear()
    try:
        got = sample(tree).cook("q_integration", use_cache=False)
        assert all(kernel() is not None for kernel in kernels)  # compiled, without the disk cache
    finally:
        monkeypatch.undo()
        for kernel in kernels:
            kernel.cache_clear()
    np.testing.assert_array_equal(got.intensity.values, expected.intensity.values)


# --- row 14: bounds on every parameter, and size estimates -----------------------------------
@pytest.mark.parametrize("step, overrides, message", [
    ("q_integration", {"radial_bin_px": 1e-9}, r"q_integration.radial_bin_px = 1e-09 is not allowed; allowed: number >= 0.01"),
    ("reconstruction", {"canvas_shape": [10 ** 6, 10 ** 6]}, r"sensor_layout.canvas_shape\[0\] = 1000000 is not allowed"),
    ("reconstruction", {"median_prefilter": 100001},
     r"roi.median_prefilter = 100001 is not allowed; allowed: odd integer >= 1 and <= 99"),
    ("e_spectrum_and_isf", {"q_max": float("inf")}, r"q_range.q_max = inf is not allowed"),
    ("q_integration", {"distance_mm": float("inf")}, r"geometry.distance_mm = inf is not allowed"),
    ("q_integration", {"centre_iterations": 101},
     r"q_integration.centre_iterations = 101 is not allowed; allowed: integer >= 1 and <= 100"),
    ("e_spectrum_and_isf", {"n_mc": 10 ** 100}, r"e_spectrum.n_mc = <integer of about 101 digits> is not allowed"),
    ("e_spectrum_and_isf", {"velocity_calibration": {"kind": "poly", "poly_coeffs": []}},
     r"kind poly needs poly_coeffs.*velocity_calibration.poly_coeffs = \[\] \(from override\)"),
])
def test_absurd_values_are_refused_naming_the_parameter(tree, step, overrides, message):
    with pytest.raises(BadInput, match=message):
        sample(tree).cook(step, use_cache=False, **overrides)


def test_every_numeric_field_is_bounded_and_infinity_never_stored(tree):
    from eqegs_repo.params.types import SCHEMAS

    def numbers(field):
        yield field
        if field.item is not None:
            yield from numbers(field.item)

    unbounded = [(s.name, f.name) for s in SCHEMAS for top in s.fields for f in numbers(top)
                 if f.kind in ("int", "float") and (f.minimum is None or f.maximum is None)]
    assert unbounded == []
    with pytest.raises(SpiceError, match=r"q_range.q_max = inf is not allowed"):
        tree[PROPOSAL].spice.update("q_range", "S001", q_max=float("inf"))
    tree[PROPOSAL].spice.seed("velocity_calibration", "S001", kind="poly")  # accepted alone ...
    try:
        with pytest.raises(BadInput, match=r"kind poly needs poly_coeffs.*\(from proposal S001 r1"):
            sample(tree).cook(use_cache=False)  # ... and named when it is used
    finally:
        tree[PROPOSAL].spice.erase("velocity_calibration", "S001")


@pytest.mark.parametrize("step, overrides, limit, message", [
    ("reconstruction", {}, 1000, r"the images of canvas_shape would need about .* GiB.*sensor_layout.canvas_shape = \[64, 48\]"),
    ("q_integration", {"radial_bin_px": 0.01}, 10 << 20, r"the radial sums \(frames x bins\) of radial_bin_px would need.*"
                                                         r"q_integration.radial_bin_px = 0.01 \(from override\)"),
    ("e_spectrum_and_isf", {"n_mc": 100_000}, 10 << 20, r"Monte-Carlo resamples .* would need.*e_spectrum.n_mc = 100000"),
])
def test_large_allocations_are_estimated_first(tree, monkeypatch, step, overrides, limit, message):
    sample(tree).cook("q_integration")  # upstream steps cached
    monkeypatch.setenv(limits.LIMIT_VARIABLE, str(limit))
    with pytest.raises(BadInput, match=message):
        sample(tree).cook(step, use_cache=step != "reconstruction", **overrides)
    assert limits.memory_limit() == limit


# --- rows 15, 16: values too long to read, writes refused by the filesystem -------------------
def test_a_5000_digit_value_on_the_command_line_is_one_clear_error(tree, capsys):
    args = ["--spice-url", tree.spice_url, "--cache-url", tree.cache_url]
    digits = "9" * 5000
    assert main(["cook", tree.url, PROPOSAL, "S001", "--set", f"n_mc={digits}", *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--set n_mc=999999999999... : an integer of 5000 digits cannot be read" in err
    assert main(["spice", "update", tree.url, PROPOSAL, "e_spectrum", "--anchor", "S001", f"n_mc={digits}",
                 "--spice-url", tree.spice_url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "e_spectrum.n_mc = '9999" in err and "(5000 characters) cannot be read" in err


def test_spice_writes_into_a_read_only_tree_are_one_line(tmp_path, monkeypatch, capsys):
    import spice.store
    from tests.helpers.treeutil import local_fs, write_tree

    write_tree(local_fs(), str(tmp_path), {"2025A1234": ["S001"]})

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(spice.store.os, "makedirs", read_only)
    assert main(["spice", "update", str(tmp_path), "2025A1234", "q_range", "--anchor", "S001", "q_min=10"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"into the spice folder {tmp_path}/2025A1234/.spice (Read-only file system); nothing was stored" in err


def test_an_os_error_reaching_the_command_line_is_one_line(tmp_path, monkeypatch, capsys):
    from eqegs_repo.cli import main as cli

    def failing(args):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(cli, "cmd_ls", failing)
    assert cli.main(["ls", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"eqegs: error: {tmp_path / 'x'}: Permission denied\n"


# --- row 17: a cache entry that is not what it should be -------------------------------------
@pytest.mark.parametrize("meta", [b"[1, 2, 3]", b'{"attrs": [], "variables": {}}', b'"text"',
                                  b'{"attrs": {}, "variables": {"x": 5}}'])
def test_a_cache_entry_with_foreign_metadata_is_a_miss_and_cooked_again(tree, meta):
    expected = sample(tree).cook("reconstruction")
    cache = tree.cache
    folder = cache.folder(sample(tree).path, PROPOSAL, "S001", "reconstruction")
    key = expected.attrs["fingerprint"]
    buffer = io.BytesIO()
    np.savez(buffer, **{cache_module.META: np.frombuffer(meta, dtype=np.uint8)})
    cache.fs.pipe_file(f"{folder}/{key}.npz", buffer.getvalue())
    assert cache.load(folder, key) is None
    again = sample(tree).cook("reconstruction")
    np.testing.assert_array_equal(again.image.values, expected.image.values)
    assert json.loads(json.dumps(cache.load(folder, key).attrs["fingerprint"])) == key  # rewritten whole
