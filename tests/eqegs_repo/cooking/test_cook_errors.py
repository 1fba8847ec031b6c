"""Bad input to the cooking layer: each error names the parameter and where its value came from."""
import numpy as np
import pytest

from eqegs_repo.cooking import passes
from eqegs_repo.errors import BadInput, BadSample
from eqegs_repo.simulate import synthetic
from tests.helpers.cooktrees import (
    BACKGROUND,
    PROPOSAL,
    image_params,
    repository,
    seed_spice,
    write_runs,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("errors")
    params = image_params(n_frames=256)
    write_runs(base, params, [1])
    # a background with another frame count, and one with another image shape
    synthetic.write_sample(base / PROPOSAL / "S000_short", image_params(n_frames=200), seed=2, background=True)
    synthetic.write_sample(base / PROPOSAL / "S900_wide", image_params(n_frames=256),
                           seed=3, background=True)
    repo = repository(base)
    prop = repo[PROPOSAL]
    seed_spice(prop, params, bg_n_points=10, n_mc=20)
    prop.spice.update("sensor_layout", "S900_wide", canvas_shape=[64, 60],
                    offsets=[[0, 0], [0, 20], [0, 40]])
    return repo


def sample(repo):
    return repo[PROPOSAL]["S001"]


def test_background_with_another_frame_count_or_shape(tree):
    with pytest.raises(BadInput, match=r"S000_short has 200 frames but S001 has 256.*"
                                       r"q_integration.bg_sample_id = 'S000_short' \(from override\)"):
        sample(tree).cook("q_integration", bg_sample_id="S000_short")
    with pytest.raises(BadInput, match=r"images of \[64, 60\] px but S001 to \[64, 48\]"):
        sample(tree).cook("q_integration", bg_sample_id="S900_wide")
    with pytest.raises(BadInput, match=r"'S000_nois' \(from override\) is not a sample of proposal 2025A1234; closest: S000_noise"):
        sample(tree).cook("q_integration", bg_sample_id="S000_nois")


def test_roi_outside_the_image_names_the_record(tree):
    prop = tree[PROPOSAL]
    record = prop.spice.seed("roi", "S001", x0=10, y0=10, x1=48, y1=30)
    try:
        with pytest.raises(BadInput, match=rf"roi.x1 = 48 is outside the image.*roi.x1 = 48 \(from proposal "
                                           rf"S001 r1 {record.uuid[:8]}\)"):
            sample(tree).cook("reconstruction")
    finally:
        prop.spice.erase("roi", "S001")
    with pytest.raises(BadInput, match=r"roi.y0 = 70 is outside the image: rows run from 0 to 63.*\(from override\)"):
        sample(tree).cook("reconstruction", roi={"x0": 0, "y0": 70, "x1": 5, "y1": 75})


def test_q_range_without_pixels(tree):
    with pytest.raises(BadInput, match=r"holds no q bin with pixels.*q_range.q_min = 0.0 \(from override\).*"
                                       r"q_range.q_max = 0.5 \(from override\)"):
        sample(tree).cook(q_min=0.0, q_max=0.5)
    with pytest.raises(BadInput, match=r"q_min = 13.0 must be smaller than q_max = 12.0"):
        sample(tree).cook(q_min=13.0, q_max=12.0)


def test_sectors_selecting_nothing(tree):
    with pytest.raises(BadInput, match=r"sectors\[0\] = \[45, 45\] degrees selects no usable pixel.*"
                                       r"q_integration.sectors = \[\[45.0, 45.0\]\] \(from override\)"):
        sample(tree).cook("q_integration", angle_mode="specify", sectors=[[45.0, 45.0]])
    with pytest.raises(BadInput, match="needs at least one sector"):
        sample(tree).cook("q_integration", angle_mode="specify", sectors=[])


def test_calibration_number_without_a_definition(tree):
    with pytest.raises(BadInput, match=r"calibration.velocity_number = 2 \(from override\) is not defined: "
                                       r"the velocity_calibration in use has velocity_calibration.number = 1 "
                                       r"\(from default\)"):
        sample(tree).cook(velocity_number=2)
    with pytest.raises(BadInput, match=r"calibration.angle_number = 3 .* angle_calibration.number = 0"):
        sample(tree).cook(angle_number=3)


def test_nan_in_raw_data(tmp_path):
    params = image_params(n_frames=64, dtype="float32")
    write_runs(tmp_path, params, [1])
    path = tmp_path / PROPOSAL / "S001" / "train_integrated" / "sensor_2.npy"
    counts = np.load(path, mmap_mode="r+")
    counts[37, 5, 6] = np.nan
    counts.flush()
    del counts
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params)
    with pytest.raises(BadSample, match=r"sensor_2.npy: frame 37, pixel \(row 5, col 6\) holds nan"):
        sample(repo).cook("reconstruction")


def test_a_velocity_that_is_not_finite_or_constant_is_refused_naming_velocity_npy(tmp_path, monkeypatch):
    params = image_params(n_frames=64)
    write_runs(tmp_path, params, [1])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params, bg_n_points=10, n_mc=20)  # kind poly on the measured waveform
    path = tmp_path / PROPOSAL / "S001" / "train_integrated" / "velocity.npy"
    measured = np.load(path)
    broken = measured.copy()
    broken[[9, 20]] = np.nan, np.inf
    np.save(path, np.full(64, np.inf))  # refused before the sensor files are read
    monkeypatch.setattr(passes, "_stream", lambda *args, **kwargs: pytest.fail("sensor files read"))
    with pytest.raises(BadSample, match=r"velocity.npy: frame 0 holds inf \(64 of 64 values"):
        sample(repo).cook()
    monkeypatch.undo()
    # NaN/inf and an all-zero waveform once gave an IndexError traceback naming no file
    for values, message in (
            (broken, r"frame 9 holds nan \(2 of 64 values are NaN or infinite\); expected a finite velocity"),
            (np.zeros(64), r"all 64 values of the measured drive waveform are 0; the calibration "
                           r"velocity_calibration.kind = 'poly' \(from proposal .*\) turns a constant waveform "
                           r"into one velocity \(0 mm/s\) for every frame, so there is no energy sweep")):
        np.save(path, values)
        with pytest.raises(BadSample, match=message) as exc:
            sample(repo).cook()
        assert str(exc.value).startswith(f"{path}: ")
    # a model calibration does not use the waveform: a constant one (no monitor signal) cooks
    np.save(path, np.zeros(64))
    ds = sample(repo).cook(velocity_calibration={"kind": "triangle"}, fit_model="none")
    assert np.ptp(ds["velocity"].values) > 0
    # a calibration that is constant by itself is its own fault, not the file's
    with pytest.raises(BadInput, match=r"the calibration velocity_calibration.kind = 'table' \(from override\) "
                                       r"gives one velocity \(1.5 mm/s\) for every frame") as exc:
        np.save(path, measured)
        sample(repo).cook(velocity_calibration={"kind": "table", "table_mm_s": [1.5] * 64})
    assert not isinstance(exc.value, BadSample)


def test_sub_folder_names_outside_the_allowed_characters(tree):
    with pytest.raises(BadInput, match=r"q_integration.output_subdir.*'a/b'"):
        sample(tree).cook("q_integration", q_integration={"output_subdir": "a/b"})
    with pytest.raises(BadInput, match=r"e_spectrum.input_subdir.*'x-1'"):
        sample(tree).cook(e_spectrum={"input_subdir": "x-1"})


def test_missing_q_range_and_unknown_step(tree, tmp_path):
    params = image_params(n_frames=64)
    write_runs(tmp_path, params, [1])
    repo = repository(tmp_path)
    seed_spice(repo[PROPOSAL], params)
    repo[PROPOSAL].spice.erase("q_range", "")
    with pytest.raises(BadInput, match=r"q_range.q_min is not set for 2025A1234/S001"):
        sample(repo).cook(e_spectrum={"bg_n_points": 5})
    with pytest.raises(BadInput, match="unknown step 'q_int'"):
        sample(repo).cook("q_int")
    assert BACKGROUND in repo[PROPOSAL].keys()
