"""The E-QEGS spice types: coverage of PHYSICS.md §4, defaults, units, ranges, cross-checks."""
import hashlib
import os

import pytest

import spice
from eqegs_repo.kernels.sensors import SensorLayout
from eqegs_repo.params import types as params
from eqegs_repo.params.binding import prepare_values


def collection():
    return spice.Collection(f"memory://params-{os.urandom(6).hex()}", registry=params.REGISTRY,
                            prepare=prepare_values)


def test_every_physics_parameter_has_a_field_with_unit_and_doc():
    fields = {(r["type"], r["field"]) for r in params.schema_rows()}
    expected = {
        "sensor_layout": ["n_sensors", "sensor_shape", "mode", "offsets", "flips",
                          "canvas_shape"],
        "roi": ["x0", "y0", "x1", "y1", "auto_half_size", "median_prefilter"],
        "reconstruction": ["dtype_out"],
        "geometry": ["energy_keV", "wavelength_nm", "pixel_size_mm", "distance_mm", "tilt_rot1",
                     "tilt_rot2", "polarisation_factor"],
        "q_integration": ["centre_method", "centroid_threshold_frac", "centre_iterations",
                          "forward_box_halfwidth", "direct_exclusion_halfwidth", "bg_sample_id",
                          "bg_scale_mode", "bg_scale", "angle_mode", "sectors", "radial_bin_px",
                          "pixel_splitting", "solid_angle_correction", "hot_pixel_mad",
                          "output_subdir"],
        "sp_param": ["start_cut_frames"],
        "calibration": ["velocity_number", "angle_number", "folder", "files"],
        "velocity_calibration": ["number", "kind", "v_max", "phase_frames", "period_frames",
                                 "v0_offset", "poly_coeffs", "table_mm_s"],
        "angle_calibration": ["number", "kind", "thickness_path_factor"],
        "q_range": ["q_min", "q_max"],
        "e_spectrum": ["rebin_factor", "turnaround_cut_frac", "turnaround_guard_frames",
                       "bg_fit_enabled", "bg_n_points", "relax_bg_coeff", "isf_error_threshold",
                       "n_mc", "mc_noise", "seed", "isf_normalisation", "fit_model",
                       "output_subdir_mode"],
    }
    missing = [(t, f) for t, names in expected.items() for f in names if (t, f) not in fields]
    assert missing == []
    assert all(r["doc"] for r in params.schema_rows())


def test_defaults_and_units_follow_physics_md():
    d, u = params.defaults(), params.units()
    assert d["sp_param"] == {"start_cut_frames": 5}
    assert d["roi"]["auto_half_size"] == [37, 24] and d["roi"]["x0"] is None
    assert d["sensor_layout"]["offsets"] == [[0, 0], [0, 128], [0, 256]]
    assert d["sensor_layout"]["canvas_shape"] == [728, 384]
    assert d["q_integration"]["forward_box_halfwidth"] == 20
    assert d["q_integration"]["direct_exclusion_halfwidth"] == 50
    assert d["e_spectrum"]["n_mc"] == 500 and d["geometry"]["pixel_size_mm"] == 0.0726
    assert d["calibration"]["velocity_number"] == 1 and d["calibration"]["angle_number"] == 0
    assert u["q_range"] == {"q_min": "nm^-1", "q_max": "nm^-1"}
    assert u["geometry"]["distance_mm"] == "mm"
    d["roi"]["auto_half_size"].append(1)  # fresh copies every call
    assert params.defaults()["roi"]["auto_half_size"] == [37, 24]


def test_default_sensor_layout_is_accepted_by_the_reconstruction_layout():
    layout = SensorLayout.from_mapping(params.defaults()["sensor_layout"])
    c = collection()
    c.seed("sensor_layout", "", layout.to_mapping())  # its schema_version key is accepted
    assert c.view("S1").sensor_layout.to_dict() == params.defaults()["sensor_layout"]


@pytest.mark.parametrize("type_name, values, fragment", [
    ("q_range", {"q_min": 14.0, "q_max": 10.0}, "q_min = 14.0 must be smaller than q_max = 10.0"),
    ("q_range", {"q_min": -1.0}, "q_range.q_min = -1.0"),
    ("roi", {"x0": 5, "y0": 0, "x1": 4, "y1": 3}, "roi.x1 = 4 must be >= roi.x0 = 5"),
    ("roi", {"x0": 5}, "needs all four corners"),
    ("roi", {"median_prefilter": 4}, "odd integer >= 1"),
    ("sp_param", {"start_cut_frames": -1}, "sp_param.start_cut_frames = -1"),
    ("sensor_layout", {"n_sensors": 2, "offsets": [[0, 0]]}, "offsets lists 1 entries"),
    ("sensor_layout", {"flips": ["none", "up"]}, "flips[1] = 'up'"),
    ("geometry", {"energy_keV": 14.4125, "wavelength_nm": 0.1}, "does not match energy_keV"),
    ("q_integration", {"sectors": [[0, 360]]}, "sectors[0][1] = 360"),
    ("q_integration", {"output_subdir": "a/b"}, "matching"),
    ("q_integration", {"angle_mode": "specify", "sectors": []}, "needs at least one sector"),
    ("calibration", {"files": {"a.py": "1234"}}, "SHA-256"),
    ("e_spectrum", {"turnaround_cut_frac": 0.0}, "> 0 and <= 1"),
    ("velocity_calibration", {"kind": "poly", "poly_coeffs": []}, "needs poly_coeffs"),
])
def test_bad_values_are_refused_naming_field_value_and_range(type_name, values, fragment):
    with pytest.raises(spice.SpiceValidationError) as info:
        collection().seed(type_name, "S1", values)
    assert fragment in str(info.value)


def test_q_range_from_two_scopes_is_checked_in_the_combined_view():
    repository, proposal = collection(), collection()
    repository.seed("q_range", "", q_min=12.0)
    proposal.seed("q_range", "S5", q_max=10.0)  # valid alone, invalid combined
    layers = [("repository", repository, "P1"), ("proposal", proposal, "S5")]
    view = spice.ResolvedView(layers, params.REGISTRY)
    assert view.q_range.to_dict() == {"q_min": 12.0, "q_max": 10.0}
    assert any("q_min = 12.0 must be smaller" in m for m in view.check())
    with pytest.raises(spice.SpiceValidationError, match="not usable"):
        view.validate()
    assert repository.view("S1").missing() == ["q_range.q_max"]


def test_calibration_folder_is_recorded_with_a_hash_of_each_file(tmp_path):
    folder = tmp_path / "calib"
    folder.mkdir()
    (folder / "calibration_velocity.py").write_bytes(b"def v(n): return n\n")
    (folder / "sp_param.json").write_bytes(b'{"START_CUT_FRAMES": 5}')
    c = collection()
    record = c.seed("calibration", "", velocity_number=2, folder=str(folder))
    assert record.data["files"] == {
        "calibration_velocity.py": hashlib.sha256(b"def v(n): return n\n").hexdigest(),
        "sp_param.json": hashlib.sha256(b'{"START_CUT_FRAMES": 5}').hexdigest()}
    with pytest.raises(FileNotFoundError, match="nowhere"):
        c.update("calibration", "", folder=str(tmp_path / "nowhere"))


def test_blame_lets_a_broken_file_pass_unblamed():
    """A BadSample raised while a parameter is blamed names the file, not the parameter."""
    from eqegs_repo.errors import BadSample
    from eqegs_repo.params.effective import StepParameters

    class View:  # the spice view is never asked: the message names no field
        def __getattr__(self, name):
            raise AssertionError(f"spice view asked for {name}")

    params = StepParameters(View(), {}, label="P/S")
    with pytest.raises(BadSample) as exc:
        with params.blame("q_integration.forward_box_halfwidth"):
            raise BadSample("S001/train_integrated/sensor_0.npy: frame 3 has a negative count")
    assert str(exc.value) == "S001/train_integrated/sensor_0.npy: frame 3 has a negative count"
