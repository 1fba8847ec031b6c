"""The synthetic tree writer (eqegs_repo.simulate.synthetic): layout on disk, truth, determinism, statistics."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from eqegs_repo import simulate as fw
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import physics
from eqegs_repo.kernels.sensors import SensorLayout, combine, coverage
from eqegs_repo.simulate import synthetic as sy

ACCOUNT = "u0000000"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("synthetic")
    return sy.write_tree(base, preset="tiny", seed=3)


def load_canvas(sample_dir, layout):
    sensors = [np.load(sample_dir / "train_integrated" / f"sensor_{k}.npy") for k in range(layout.n_sensors)]
    return combine(sensors, layout=layout)


def tiny_params(**overrides):
    return sy.preset_params("tiny", **{"n_frames": 24, **overrides})


def test_tree_layout_markers_and_truth_location(tree):
    root = Path(tree.base_dir) / "UserData" / ACCOUNT / "EQEGS"
    assert tree.root == root
    assert sorted(p.name for p in root.iterdir()) == ["2025A1234", "2025B5678"]
    assert tree.samples == {
        "2025A1234": ("S000_noise", "S001", "S002", "S003"),
        "2025B5678": ("S000_noise", "S001", "S002"),
    }
    frames = {}
    for proposal, samples in tree.samples.items():
        assert (root / proposal / "download").is_dir() and not any((root / proposal / "download").iterdir())
        assert sorted(p.name for p in (root / proposal).iterdir()) == sorted(samples + ("download",))
        for sample in samples:
            folder = root / proposal / sample
            # Only the raw input is inside the sample folder; the truth lives elsewhere.
            files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            assert files == ["train_integrated.json"] + [f"train_integrated/{n}" for n in
                                                         ("sensor_0.npy", "sensor_1.npy", "sensor_2.npy", "velocity.npy")]
            marker = json.loads((folder / "train_integrated.json").read_text())
            assert marker["n_sensors"] == 3 and marker["sensor_shape"] == [64, 16] and marker["dtype"] == "uint16"
            assert marker["start_time"] < marker["end_time"] and marker["start_time"].endswith("Z")
            for k in range(3):
                stack = np.load(folder / "train_integrated" / f"sensor_{k}.npy", mmap_mode="r")
                assert stack.shape == (marker["n_frames"], 64, 16) and stack.dtype == np.uint16
            velocity = np.load(folder / "train_integrated" / "velocity.npy")
            assert velocity.shape == (marker["n_frames"],) and velocity.dtype == np.float64
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            assert size < 1_000_000
            frames.setdefault(proposal, set()).add(marker["n_frames"])
            stem = tree.base_dir / "truth" / ACCOUNT / proposal / sample
            assert stem.with_suffix(".json").is_file() and stem.with_suffix(".npz").is_file()
    assert frames == {"2025A1234": {128}, "2025B5678": {96}}  # shared inside, different across proposals


def test_truth_records(tree):
    background = sy.load_truth(tree.base_dir, ACCOUNT, "2025A1234", "S000_noise")
    samples = [sy.load_truth(tree.base_dir, ACCOUNT, "2025A1234", s) for s in ("S001", "S002", "S003")]
    assert background.record["run"] == "background" and background.record["dynamics"] is None
    with pytest.raises(BadInput, match="background run"):
        background.dynamics
    taus = [t.record["dynamics"]["tau0_ns"] for t in samples]
    assert taus == [100.0 * f for f in sy.TAU_FACTORS[:3]]
    assert len({t.record["seed"] for t in samples + [background]}) == 4
    first = samples[0]
    assert first.record["schema_version"] == sy.SCHEMA_VERSION and first.record["tree_seed"] == 3
    assert first.record["background_sample"] == "S000_noise" and first.record["proposal"] == "2025A1234"
    assert first.record["centre_xy"] == pytest.approx([190.3 / 8, 300.7 * 64 / 728], abs=1e-3)
    for key in ("distance_mm", "wavelength_nm", "pixel_mm", "analyser", "source", "flux", "background_scale_k"):
        assert key in first.record
    # All runs of a proposal share the velocity cycle; the recorded waveform is v + small noise.
    np.testing.assert_array_equal(first.arrays["velocity"], background.arrays["velocity"])
    measured = np.load(tree.root / "2025A1234" / "S001" / "train_integrated" / "velocity.npy")
    assert np.std(measured - first.arrays["velocity"]) == pytest.approx(0.005, rel=0.3)
    q = first.arrays["q"]
    np.testing.assert_allclose(first.arrays["tau_ns"], 100.0 * (q / 12.0) ** -2)
    np.testing.assert_allclose(first.arrays["f_q"], 0.7)
    assert first.isf(12.0, 100.0) == pytest.approx(0.7 / np.e)
    # Over a q range the truth is the scattering-weighted mean of the pixels' ISFs.
    t = np.array([0.0, 50.0, 100.0])
    ranged = first.isf_in_q_range(11.9, 12.1, t)
    np.testing.assert_allclose(ranged, first.isf(12.0, t), rtol=0.02)
    wide = first.isf_in_q_range(8.0, 16.0, t)
    assert wide[0] == pytest.approx(0.7) and first.isf(16.0, 100.0) < wide[2] < first.isf(8.0, 100.0)
    with pytest.raises(BadInput, match="no recorded pixel"):
        first.isf_in_q_range(60.0, 70.0, t)
    assert first.params == sy.preset_params("tiny", 0)
    with pytest.raises(FileNotFoundError, match="no synthetic truth"):
        sy.load_truth(tree.base_dir, ACCOUNT, "2025A1234", "S099")


def test_counts_are_poisson_around_the_model(tree):
    truth = sy.load_truth(tree.base_dir, ACCOUNT, "2025B5678", "S001")
    params = truth.params
    canvas = load_canvas(tree.root / "2025B5678" / "S001", params.sensor_layout).astype(np.float64)
    mu = params.image_model("sample").expected()
    assert canvas.shape == mu.shape
    # Frame-summed pixels: Poisson residuals have unit variance if geometry, split and noise are right.
    summed, expected = canvas.sum(0), mu.sum(0)
    pulls = (summed - expected) / np.sqrt(expected)
    assert abs(pulls.mean()) < 0.15 and pulls.std() == pytest.approx(1.0, abs=0.1)
    # Per frame, the whole image total agrees with the model within its Poisson error.
    per_frame = (canvas.sum((1, 2)) - mu.sum((1, 2))) / np.sqrt(mu.sum((1, 2)))
    assert np.max(np.abs(per_frame)) < 5


def test_direct_beam_centre_and_ring_position(tree):
    truth = sy.load_truth(tree.base_dir, ACCOUNT, "2025A1234", "S002")
    params = truth.params
    sample = load_canvas(tree.root / "2025A1234" / "S002", params.sensor_layout).sum(0).astype(np.float64)
    background = load_canvas(tree.root / "2025A1234" / "S000_noise", params.sensor_layout).sum(0).astype(np.float64)
    x_c, y_c = truth.record["centre_xy"]
    y, x = np.mgrid[0 : sample.shape[0], 0 : sample.shape[1]]
    box = (np.abs(x - round(x_c)) <= 5) & (np.abs(y - round(y_c)) <= 5)
    weights = np.where(box, background - np.median(background), 0.0)
    assert np.sum(weights * x) / weights.sum() == pytest.approx(x_c, abs=0.1)  # x = column index
    assert np.sum(weights * y) / weights.sum() == pytest.approx(y_c, abs=0.1)  # y = row index
    # The S(q) peak of the background-subtracted image sits at q_peak = 14 nm⁻¹.
    geometry = params.geometry()
    diff = (sample - background) / geometry.solid_angle
    edges = np.arange(6.0, 20.0, 1.0)
    which = np.digitize(geometry.q, edges)
    profile = [diff[which == b].mean() for b in range(1, edges.size)]
    peak_q = 0.5 * (edges[:-1] + edges[1:])[int(np.argmax(profile))]
    assert peak_q == pytest.approx(14.0, abs=1.0)
    assert sy.spice_mappings(params)["geometry"]["distance_mm"] == pytest.approx(100.0 * 64 / 728)


def test_seeded_and_independent_of_block_size(tmp_path):
    params = tiny_params()
    sy.write_sample(tmp_path / "a", params, seed=11)
    sy.write_sample(tmp_path / "b", params, seed=11, block_frames=5)
    sy.write_sample(tmp_path / "c", params, seed=12)
    sy.write_sample(tmp_path / "d", params, seed=11, background=True)
    for name in ("sensor_0.npy", "sensor_2.npy", "velocity.npy"):
        a = np.load(tmp_path / "a" / "train_integrated" / name)
        np.testing.assert_array_equal(a, np.load(tmp_path / "b" / "train_integrated" / name))
        assert not np.array_equal(a, np.load(tmp_path / "c" / "train_integrated" / name))
        assert not np.array_equal(a, np.load(tmp_path / "d" / "train_integrated" / name))


def test_tree_is_reproducible_and_protected(tmp_path):
    first = sy.write_tree(tmp_path / "one", preset="tiny", seed=5, proposals=("2024A0001",), samples_per_proposal=1)
    sy.write_tree(tmp_path / "two", preset="tiny", seed=5, proposals=("2024A0001",), samples_per_proposal=1)
    for sample in first.samples["2024A0001"]:
        rel = Path("UserData") / ACCOUNT / "EQEGS" / "2024A0001" / sample / "train_integrated" / "sensor_1.npy"
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        sy.write_tree(tmp_path / "one", preset="tiny", seed=6, proposals=("2024A0001",), samples_per_proposal=1)
    sy.write_tree(tmp_path / "one", preset="tiny", seed=6, proposals=("2024A0001",), samples_per_proposal=1, overwrite=True)
    assert sy.load_truth(tmp_path / "one", ACCOUNT, "2024A0001", "S001").record["tree_seed"] == 6
    leftovers = [p.name for p in (tmp_path / "one").rglob(".*")]
    assert leftovers == []  # no temporary folders or files left behind


def test_background_scale_is_the_forward_ratio(tmp_path):
    params = tiny_params(background_scale=1.25, n_frames=16)
    sy.write_sample(tmp_path / "s", params, seed=1)
    sy.write_sample(tmp_path / "b", params, seed=2, background=True)
    x_c, y_c = params.centre_xy
    rows = slice(round(y_c) - 4, round(y_c) + 5)
    cols = slice(round(x_c) - 4, round(x_c) + 5)
    box = [load_canvas(tmp_path / n, params.sensor_layout)[:, rows, cols].sum() for n in ("s", "b")]
    assert box[0] / box[1] == pytest.approx(1.25, rel=0.01)
    # R_s − k·R_b leaves only the sample's scattering (beam, air and dark cancel), within Poisson noise.
    mu_s, mu_b = params.image_model("sample").expected(), params.image_model("background").expected()
    diff = load_canvas(tmp_path / "s", params.sensor_layout) - 1.25 * load_canvas(tmp_path / "b", params.sensor_layout)
    sigma = np.sqrt(mu_s.sum() + 1.25**2 * mu_b.sum())
    assert abs(diff.sum() - (mu_s - 1.25 * mu_b).sum()) < 5 * sigma
    scattering = mu_s - 1.25 * mu_b
    assert np.all(scattering[:, params.geometry().r_px > 6] > 0)


def test_sum_layout_and_flips_are_simulated_consistently(tmp_path):
    layout = SensorLayout(n_sensors=2, sensor_shape=(30, 40), mode="sum", offsets=[(0, 0), (4, 8)],
                          flips=["none", "rot180"], canvas_shape=(34, 48))
    params = tiny_params(sensor_layout=layout, centre_xy=(20.3, 15.6), n_frames=12, dtype="float32")
    sy.write_sample(tmp_path / "s", params, seed=4)
    canvas = load_canvas(tmp_path / "s", layout).astype(np.float64).sum(0)
    expected = params.image_model().expected().sum(0)
    covered = coverage(layout) > 0  # canvas pixels outside every sensor are not recorded
    assert not covered.all() and (canvas[~covered] == 0).all()
    pulls = (canvas - expected)[covered] / np.sqrt(expected[covered])
    assert pulls.std() == pytest.approx(1.0, abs=0.12) and abs(pulls.mean()) < 0.15
    marker = json.loads((tmp_path / "s" / "train_integrated.json").read_text())
    assert marker["n_sensors"] == 2 and marker["sensor_shape"] == [30, 40] and marker["dtype"] == "float32"
    assert SensorLayout.from_mapping(sy.spice_mappings(params)["sensor_layout"]) == layout


def test_presets_and_params():
    assert sy.PRESETS["full"].bytes_per_sample() == 3 * 4092 * 728 * 128 * 4
    assert sy.PRESETS["tiny"].bytes_per_sample() < 1_000_000
    full = sy.preset_params("full")
    assert full.n_frames == 4092 and full.sensor_layout == SensorLayout.default() and full.dtype == "uint32"
    assert full.centre_xy == (190.3, 300.7) and full.distance_mm == 100.0
    assert sy.preset_params("small").n_frames == 1024
    for name, preset in sy.PRESETS.items():
        params = sy.preset_params(name)
        ring = physics.radius_from_q(14.0, pixel_mm=params.pixel_mm, distance_mm=params.distance_mm)
        height, width = params.sensor_layout.canvas_shape
        x_c, y_c = params.centre_xy
        assert ring < max(height - y_c, y_c) and 0 < x_c < width  # ring and beam on the canvas
        assert len(set(preset.frame_counts)) == len(preset.frame_counts)
    custom = dataclasses.replace(full, source_lines=fw.SourceSpectrum.multi_line().lines, tau_table=((5.0, 300.0), (30.0, 10.0)))
    assert sy.SyntheticParams.from_mapping(json.loads(json.dumps(custom.to_mapping()))) == custom


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(BadInput, match="unknown synthetic preset 'huge'"):
        sy.preset_params("huge")
    with pytest.raises(BadInput, match="uint16 maximum"):
        sy.write_sample(tmp_path / "x", tiny_params(n_frames=4, flux=1e6), seed=0)
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".*"))
    with pytest.raises(BadInput, match="inside the sample folder"):
        sy.write_sample(tmp_path / "y", tiny_params(n_frames=4), seed=0, truth_path=tmp_path / "y" / "truth")
    with pytest.raises(BadInput, match="samples_per_proposal"):
        sy.write_tree(tmp_path, samples_per_proposal=(1,))
    with pytest.raises(BadInput, match="unknown fields"):
        sy.SyntheticParams.from_mapping({"n_frame": 3})
    with pytest.raises(BadInput, match=r"signed integers of at least 16 bits\), got 'int8'"):  # unreadable
        tiny_params(dtype="int8")
    with pytest.raises(ValueError, match="f_q"):
        tiny_params(f_q=1.5)


def test_spice_mappings_validate_against_the_parameter_schemas():
    from eqegs_repo.params import types as eqegs_params

    for preset in ("tiny", "full"):
        mappings = sy.spice_mappings(sy.preset_params(preset))
        eqegs_params.SENSOR_LAYOUT.validate(mappings["sensor_layout"])
        eqegs_params.GEOMETRY.validate(mappings["geometry"])


def test_marker_times_and_existing_truth(tmp_path):
    params = tiny_params(n_frames=4)
    sy.write_sample(tmp_path / "a", params, seed=0, start_time="2024-01-02T03:04:05Z", truth_path=tmp_path / "t" / "a")
    marker = json.loads((tmp_path / "a" / "train_integrated.json").read_text())
    assert marker["start_time"] == "2024-01-02T03:04:05Z"
    assert marker["exposure_s"] == pytest.approx(2000 * 4 / 26100.0, abs=1e-3)
    with pytest.raises(BadInput, match="ISO 8601"):
        sy.write_sample(tmp_path / "b", params, seed=0, start_time="yesterday")
    with pytest.raises(FileExistsError, match="a.json exists"):
        sy.write_sample(tmp_path / "c", params, seed=0, truth_path=tmp_path / "t" / "a.json")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_expected_images_analysed_as_in_physics_md_give_the_true_isf():
    # Forward box and background-subtracted q range of the noise-free images, normalised on the
    # wings, divided in the Fourier domain (PHYSICS.md §3): the truth over that q range comes back.
    params = sy.preset_params("tiny", n_frames=1024, v_max_mm_s=10.0)
    sample, background = params.image_model("sample").expected(), params.image_model("background").expected()
    geometry = params.geometry()
    x_c, y_c = params.centre_xy
    box = (np.abs(geometry.x - x_c) <= 4) & (np.abs(geometry.y - y_c) <= 4)
    k = sample[:, box].sum() / background[:, box].sum()
    assert k == pytest.approx(params.background_scale, rel=0.01)
    q_min, q_max = 11.0, 13.0
    in_range = (geometry.q >= q_min) & (geometry.q <= q_max)
    forward = sample[:, box].sum(1)
    quasielastic = (sample - k * background)[:, in_range].sum(1)
    g = np.cos(physics.two_theta_from_q(0.5 * (q_min + q_max)))
    velocity = params.velocity()
    turn = int(np.argmin(velocity))
    common = np.linspace(-9.0, 9.0, 600) * g * physics.KAPPA_NEV_PER_MM_S

    def on_grid(counts, scale):
        energy = physics.KAPPA_NEV_PER_MM_S * velocity * scale
        sweeps = [slice(0, turn + 1), slice(turn, None)]
        resampled = [np.interp(common, energy[s][np.argsort(energy[s])], counts[s][np.argsort(energy[s])]) for s in sweeps]
        mean = 0.5 * (resampled[0] + resampled[1])
        return 1.0 - mean / np.mean(np.r_[mean[:40], mean[-40:]])

    ratio = np.fft.rfft(on_grid(quasielastic, g)) / np.fft.rfft(on_grid(forward, 1.0))
    times = np.arange(ratio.size) * physics.H_NEV_NS / (common.size * (common[1] - common[0]))
    pick = (times > 4) & (times < 60)
    truth = sy.SampleTruth({"params": params.to_mapping(), "dynamics": params.dynamics().to_mapping()}, {})
    np.testing.assert_allclose(ratio.real[pick], truth.isf_in_q_range(q_min, q_max, times[pick]), atol=0.01)
