"""Per-sensor integration and frame sums (no canvas) and the threaded streaming passes."""
import fsspec
import numpy as np
import pytest

from eqegs_repo.cooking import passes
from eqegs_repo.errors import BadInput
from eqegs_repo.io.formats.npy import NpyFile
from eqegs_repo.io.frames import SensorStack
from eqegs_repo.kernels import q_integration as qi
from eqegs_repo.kernels import reconstruction
from eqegs_repo.kernels.reconstruction import FrameSumAccumulator
from eqegs_repo.kernels.sensors import SensorLayout, combine, combine_image, sensor_pixels

GEOMETRY = qi.DetectorGeometry(wavelength_nm=0.086025, pixel_size_mm=0.0726, distance_mm=10.0)
CENTRE = (9.3, 11.6)


def tile_layout():
    """Three 20 x 8 strips with 1-px gaps, each flipped differently."""
    return SensorLayout(n_sensors=3, sensor_shape=(20, 8), mode="tile", offsets=[(0, 0), (0, 9), (0, 18)],
                        flips=["lr", "ud", "rot180"], canvas_shape=(20, 26))


def sum_layout():
    """Three 20 x 8 sensors overlaid with shifts (pixels covered by 1, 2 or 3 sensors), flipped."""
    return SensorLayout(n_sensors=3, sensor_shape=(20, 8), mode="sum", offsets=[(0, 0), (2, 3), (4, 5)],
                        flips=["none", "ud", "rot180"], canvas_shape=(24, 13))


LAYOUTS = {"tile": tile_layout, "sum": sum_layout}


def sensor_blocks(layout, n_frames=13, seed=3, dtype=np.uint32):
    rng = np.random.default_rng(seed)
    return [rng.poisson(40.0, size=(n_frames,) + layout.sensor_shape).astype(dtype)
            for _ in range(layout.n_sensors)]


def integrator_for(layout, splitting):
    shape = layout.canvas_shape
    keep = qi.direct_beam_keep(shape, centre=CENTRE, halfwidth=1.5)
    bins = qi.RadialBins.uniform(bin_px=1.0, r_max_px=30.0)
    weights = qi.pixel_normalisation(shape, centre=CENTRE, geometry=GEOMETRY, solid_angle_correction=True)
    return qi.RadialIntegrator.build(shape, centre=CENTRE, geometry=GEOMETRY, bins=bins, keep=keep,
                                     pixel_splitting=splitting, pixel_weights=weights)


def engines(splitting):
    usable = splitting == "none" and qi.labelled_sum_kernel() is not None
    return ["scipy"] + (["numba"] if usable else [])


@pytest.mark.parametrize("mode", ["tile", "sum"])
def test_sensor_pixels_say_where_combine_puts_each_sensor_pixel(mode):
    layout = LAYOUTS[mode]()
    for k in range(layout.n_sensors):
        blocks = [np.zeros((1,) + layout.sensor_shape) for _ in range(layout.n_sensors)]
        blocks[k][0] = np.arange(1, 161).reshape(layout.sensor_shape)
        canvas = combine(blocks, layout=layout)[0].ravel()
        assert np.array_equal(canvas[sensor_pixels(layout, k)], blocks[k][0])


@pytest.mark.parametrize("splitting", ["none", "bbox"])
@pytest.mark.parametrize("mode", ["tile", "sum"])
def test_sensor_parts_give_the_sums_of_the_combined_canvas(mode, splitting):
    layout = LAYOUTS[mode]()
    integrator = integrator_for(layout, splitting)
    blocks = sensor_blocks(layout)
    canvas = combine(blocks, layout=layout).astype(np.float64)
    expected = canvas.reshape(len(canvas), -1) @ integrator.matrix.T.toarray().astype(np.float64)
    expected_variance = canvas.reshape(len(canvas), -1) @ integrator.matrix.multiply(integrator.matrix).T.toarray()
    parts = integrator.for_sensors(layout)
    assert parts is integrator.for_sensors(layout)  # built once per layout
    for engine in engines(splitting):
        sums = sum(p.integrate(b, engine=engine) for p, b in zip(parts, blocks))
        variance = sum(p.integrate_variance(b, engine=engine) for p, b in zip(parts, blocks))
        np.testing.assert_allclose(sums, expected, rtol=1e-12)
        np.testing.assert_allclose(variance, expected_variance, rtol=1e-12)
    assert expected.sum() > 0 and (splitting == "none") == np.array_equal(expected, expected_variance)


def test_sensor_parts_refuse_a_layout_of_another_canvas():
    integrator = integrator_for(tile_layout(), "none")
    with pytest.raises(BadInput, match=r"\[24, 13\] canvas but the integrator was built for images of \[20, 26\]"):
        integrator.for_sensors(sum_layout())


@pytest.mark.parametrize("mode", ["tile", "sum"])
@pytest.mark.parametrize("centre, halfwidth", [((9.3, 11.6), 3), ((0.2, 0.4), 2), ((12.0, 19.0), 4)])
def test_forward_box_from_sensors_equals_the_canvas_box(mode, centre, halfwidth):
    layout = LAYOUTS[mode]()
    blocks = sensor_blocks(layout)
    expected = qi.forward_spectrum(combine(blocks, layout=layout), centre=centre, halfwidth=halfwidth)
    boxes = qi.sensor_boxes(layout, centre=centre, halfwidth=halfwidth)
    np.testing.assert_array_equal(qi.forward_spectrum_sensors(blocks, boxes=boxes), expected)
    assert expected.min() > 0


def test_forward_box_skips_sensors_outside_it():
    boxes = qi.sensor_boxes(tile_layout(), centre=(2.0, 5.0), halfwidth=1)  # columns 1..3: sensor 0 only
    assert boxes[1] is None and boxes[2] is None
    assert boxes[0] == (slice(4, 7), slice(4, 7))  # sensor 0 is flipped left-right


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("mode", ["tile", "sum"])
def test_frame_sums_are_exact_beyond_float32_and_merge(mode, compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(reconstruction, "_frame_sum_kernel", lambda: None)
    layout = LAYOUTS[mode]()
    blocks = [(b.astype(np.uint64) * 10_000_019 + 2**31).astype(np.uint32) for b in sensor_blocks(layout)]
    first, second = FrameSumAccumulator(layout), FrameSumAccumulator(layout)
    totals = np.concatenate([first.add([b[:5] for b in blocks]), second.add([b[5:] for b in blocks])])
    first.merge(second)
    exact = [b.astype(np.int64).sum(axis=0) for b in blocks]
    expected = np.zeros(layout.canvas_shape, np.int64)
    for k, image in enumerate(exact):
        expected.reshape(-1)[sensor_pixels(layout, k)] += image
    assert first.n_frames == 13
    assert np.array_equal(first.image, expected.astype(np.float64)) and expected.max() > 2**32
    assert np.array_equal(totals, sum(b.astype(np.int64).sum(axis=(1, 2)) for b in blocks))
    assert np.array_equal(combine_image(exact, layout=layout), first.image)


def test_frame_sums_of_float_and_mixed_blocks():
    layout = tile_layout()
    floats = [b.astype(np.float32) + 0.25 for b in sensor_blocks(layout)]
    acc = FrameSumAccumulator(layout)
    acc.add(floats)
    np.testing.assert_allclose(acc.image, combine(floats, layout=layout).sum(axis=0, dtype=np.float64), rtol=1e-12)
    acc.add(sensor_blocks(layout, n_frames=2))  # integers after floats: still float64 sums
    assert acc.n_frames == 15 and acc.image.dtype == np.float64
    assert len(acc.add([b[:0] for b in floats])) == 0 and acc.n_frames == 15


def test_combine_image_checks_its_input():
    with pytest.raises(BadInput, match="expected 3 sensor images"):
        combine_image([np.zeros((20, 8))], layout=tile_layout())
    with pytest.raises(BadInput, match=r"sensor 1 image must have shape \(20, 8\), found \(8, 20\)"):
        combine_image([np.zeros((20, 8)), np.zeros((8, 20)), np.zeros((20, 8))], layout=tile_layout())


def stack_on_disk(tmp_path, blocks):
    fs = fsspec.filesystem("file")
    files = []
    for k, block in enumerate(blocks):
        path = str(tmp_path / f"sensor_{k}.npy")
        np.save(path, block)
        files.append(NpyFile(fs, path))
    return SensorStack(files)


@pytest.mark.parametrize("workers, block_frames", [(1, 4), (2, 1), (2, 3), (3, 5), (2, None)])
@pytest.mark.parametrize("mode", ["tile", "sum"])
def test_threaded_passes_equal_the_whole_canvas(tmp_path, mode, workers, block_frames):
    layout = LAYOUTS[mode]()
    blocks = sensor_blocks(layout, n_frames=17)
    stack = stack_on_disk(tmp_path, blocks)
    canvas = combine(blocks, layout=layout)
    integrator = integrator_for(layout, "none")
    image, per_frame, coverage = passes.frame_sum_pass(stack, layout, block_frames, workers=workers)
    assert np.array_equal(image, canvas.sum(axis=0, dtype=np.float64))
    assert np.array_equal(per_frame, sum(b.sum(axis=(1, 2), dtype=np.float64) for b in blocks))
    assert coverage.max() == (3 if mode == "sum" else 1)
    run = passes.integration_pass(stack, layout, integrator, CENTRE, 3, frame_sum=True, workers=workers,
                                  block_frames=block_frames)
    assert np.array_equal(run["sums"], integrator.integrate(canvas, engine="scipy"))
    assert run["variance"] is run["sums"]
    assert np.array_equal(run["forward"], qi.forward_spectrum(canvas, centre=CENTRE, halfwidth=3))
    assert np.array_equal(run["image"], image)


def test_a_failing_block_stops_the_pass_with_its_error(tmp_path):
    layout = tile_layout()
    stack = stack_on_disk(tmp_path, sensor_blocks(layout, n_frames=9))
    calls = []

    def work(lane, start, stop, blocks):
        calls.append(start)
        if start == 4:
            raise ValueError("block 4 is bad")

    with pytest.raises(ValueError, match="block 4 is bad"):
        passes._stream(stack, passes.block_ranges(stack, 2), 2, work)
    assert 4 in calls


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("mode", ["tile", "sum"])
def test_fused_pass_is_the_frame_sum_and_the_integration_in_one_read(tmp_path, mode, workers, monkeypatch):
    layout = LAYOUTS[mode]()
    blocks = sensor_blocks(layout, n_frames=23)
    stack = stack_on_disk(tmp_path, blocks)
    canvas = combine(blocks, layout=layout)
    integrator = integrator_for(layout, "none")
    tracked = np.array([3, 40, 41, 200, 311])
    read = []
    original = NpyFile.read_frames
    monkeypatch.setattr(NpyFile, "read_frames", lambda self, a, b, out=None: read.append(b - a) or original(self, a, b, out))
    seen = {}

    def plan(probe_image, probe_frames):
        seen.update(image=probe_image, frames=probe_frames)
        return passes.IntegrationSetup(integrator, CENTRE, 3, tracked)

    frame_bytes = layout.n_sensors * 20 * 8 * 4
    run = passes.fused_pass(stack, layout, plan, workers=workers, block_frames=4, probe_bytes=8 * frame_bytes)
    assert sum(read) == 3 * 23  # every frame of every sensor read once
    probe = [0, 1, 2, 3, 20, 21, 22]  # blocks 0 and 5 (of 6), evenly spaced, first and last
    assert seen["frames"] == len(probe) == run["probe_frames"]
    assert np.array_equal(seen["image"], canvas[probe].sum(axis=0, dtype=np.float64))
    assert np.array_equal(run["image"], canvas.sum(axis=0, dtype=np.float64))
    assert np.array_equal(run["per_frame"], canvas.reshape(23, -1).sum(axis=1, dtype=np.float64))
    assert np.array_equal(run["sums"], integrator.integrate(canvas, engine="scipy"))
    assert np.array_equal(run["forward"], qi.forward_spectrum(canvas, centre=CENTRE, halfwidth=3))
    flat = canvas.reshape(23, -1)
    per_pixel = np.zeros((23, tracked.size))
    for column, pixel in enumerate(run["tracked_pixels"]):  # a pixel under two sensors: two columns
        per_pixel[:, np.searchsorted(tracked, pixel)] += run["tracked"][:, column]
    assert np.array_equal(per_pixel, flat[:, tracked]) and run["tracked"].dtype == np.uint32
    assert (len(run["tracked_pixels"]) > tracked.size) == (mode == "sum")
    frames_only = passes.fused_pass(stack, layout, lambda image, n: None, workers=workers, block_frames=4,
                                    probe_bytes=8 * frame_bytes)
    assert "sums" not in frames_only and np.array_equal(frames_only["image"], run["image"])
