"""Calibration folders (the app's calibration_velocity.py / calibration_angle.py / sp_param.json)."""
import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.io.calibration_files import hash_calibration_folder
from tests.helpers.cooktrees import PROPOSAL, image_params, repository, seed_spice, write_runs

VELOCITY_PY = """
import numpy as np

def measured(measured, n_frames):
    return 1.0 * measured

def doubled(measured, n_frames):
    return 2.0 * measured

CALIBRATIONS = {1: measured, 2: doubled}
"""
ANGLE_PY = """
import numpy as np

CALIBRATIONS = {0: lambda two_theta: np.ones_like(two_theta), 1: lambda two_theta: np.cos(two_theta)}
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("calib")
    params = image_params(n_frames=256)
    write_runs(base, params, [1])
    folder = base.parent / (base.name + "_files")
    folder.mkdir()
    (folder / "calibration_velocity.py").write_text(VELOCITY_PY)
    (folder / "calibration_angle.py").write_text(ANGLE_PY)
    (folder / "sp_param.json").write_text('{"START_CUT_FRAMES": 9}')
    repo = repository(base)
    repo.trusted_calibration_dirs = [str(tmp_path_factory.getbasetemp())]  # calibration code may run from here
    prop = repo[PROPOSAL]
    seed_spice(prop, params, bg_n_points=10, n_mc=20)
    return repo, folder


def test_folder_calibrations_match_the_built_in_ones(tree):
    repo, folder = tree
    prop = repo[PROPOSAL]
    built_in = prop["S001"].cooked
    record = prop.spice.seed("calibration", "S001", folder=str(folder), angle_number=1)
    try:
        assert set(record.data["files"]) == {"calibration_velocity.py", "calibration_angle.py", "sp_param.json"}
        from_files = prop["S001"].cooked
        np.testing.assert_allclose(from_files.velocity.values, built_in.velocity.values)
        np.testing.assert_allclose(from_files.angle_factor.values, built_in.angle_factor.values)
        assert from_files.attrs["start_cut_frames"] == 9 and built_in.attrs["start_cut_frames"] == 5
        assert not from_files.kept.values[:9].any()
        assert from_files.attrs["calibration"]["velocity"].endswith("calibration_velocity.py #1")
        doubled = prop["S001"].cook(velocity_number=2)
        np.testing.assert_allclose(doubled.velocity.values, 2 * built_in.velocity.values)
        with pytest.raises(BadInput, match=r"calibration number 7 is not defined by .*calibration_velocity.py, "
                                           r"which defines numbers \[1, 2\] \[calibration.velocity_number = 7 "
                                           r"\(from override\)\]"):
            prop["S001"].cook(velocity_number=7)
        with pytest.raises(BadInput, match="disagrees with START_CUT_FRAMES = 9"):
            prop["S001"].cook(start_cut_frames=3)
    finally:
        prop.spice.erase("calibration", "S001")


def test_a_changed_file_is_refused(tree, tmp_path):
    repo, folder = tree
    prop = repo[PROPOSAL]
    changed = tmp_path / "calib"
    changed.mkdir()
    for name in ("calibration_velocity.py", "calibration_angle.py"):
        (changed / name).write_text((folder / name).read_text())
    prop.spice.seed("calibration", "S001", folder=str(changed))
    try:
        (changed / "calibration_velocity.py").write_text(VELOCITY_PY.replace("1.0 *", "1.1 *"))
        with pytest.raises(BadInput, match=r"calibration_velocity.py changed since it was recorded: "
                                           r"calibration.files\['calibration_velocity.py'\]"):
            prop["S001"].cooked
        (changed / "calibration_angle.py").write_text("CALIBRATIONS = [1]")
        hashes = hash_calibration_folder(changed)
        del hashes["calibration_angle.py"]
        prop.spice.update("calibration", "S001", folder=str(changed), files=hashes)
        with pytest.raises(BadInput, match="records no SHA-256 for calibration_angle.py"):
            prop["S001"].cooked
    finally:
        prop.spice.erase("calibration", "S001")


def test_bad_calibration_modules_are_named(tree, tmp_path):
    repo, folder = tree
    prop = repo[PROPOSAL]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "calibration_velocity.py").write_text("CALIBRATIONS = {1: lambda m, n: m[:10]}")
    (bad / "calibration_angle.py").write_text("CALIBRATIONS = None")
    prop.spice.seed("calibration", "S001", folder=str(bad))
    try:
        with pytest.raises(BadInput, match=r"calibration_velocity.py calibration 1 must return finite numbers "
                                           r"of shape \(256,\), returned shape \(10,\)"):
            prop["S001"].cooked
    finally:
        prop.spice.erase("calibration", "S001")
    with pytest.raises(BadInput, match="does not exist or is not a folder"):
        prop["S001"].cook(calibration={"folder": str(tmp_path / "nowhere"), "files": {}})
