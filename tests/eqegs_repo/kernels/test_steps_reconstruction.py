"""Reconstruction kernels: automatic and manual ROI, median prefilter, streamed frame sums."""
import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.reconstruction import (
    FrameSumAccumulator,
    Roi,
    detect_roi,
    median_prefilter,
    validate_roi,
)
from eqegs_repo.kernels.sensors import SensorLayout, combine


def spot_image(shape=(728, 384), centre=(190.3, 300.7), sigma=1.2, peak=500.0, base=3.0):
    yy, xx = np.indices(shape)
    r2 = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2
    return base + peak * np.exp(-r2 / (2 * sigma**2))


def small_layout(mode="tile"):
    """Three 20 x 8 strips side by side on a 20 x 26 canvas with a 1-px gap after each of the
    first two, the middle one flipped left-right (tile), or all three overlaid (sum)."""
    offsets = [(0, 0), (0, 9), (0, 18)] if mode == "tile" else [(0, 0), (0, 0), (0, 0)]
    canvas = (20, 26) if mode == "tile" else (20, 8)
    return SensorLayout(n_sensors=3, sensor_shape=(20, 8), mode=mode, offsets=offsets, flips=["none", "lr", "none"],
                        canvas_shape=canvas)


def test_auto_roi_is_75_by_49_around_the_maximum():
    image = spot_image(centre=(190.0, 301.0))
    found = detect_roi(image)
    assert (found.peak_x, found.peak_y) == (190, 301)
    assert found.roi == Roi(190 - 37, 301 - 24, 190 + 37, 301 + 24)
    assert (found.roi.width, found.roi.height) == (75, 49)
    record = found.as_dict()
    assert record["x0"] == 153 and record["y1"] == 325 and record["width"] == 75 and record["height"] == 49
    assert record["median_prefilter"] == 3 and record["roi_half_size"] == [37, 24]


def test_median_prefilter_ignores_a_hot_pixel_brighter_than_the_beam():
    image = spot_image(centre=(190.0, 301.0), sigma=2.0)
    image[20, 30] = 1e6
    assert detect_roi(image, median_size=1).peak_y == 20  # without the filter the hot pixel wins
    found = detect_roi(image, median_size=3)
    assert (found.peak_x, found.peak_y) == (190, 301)


def test_auto_roi_is_clipped_to_the_image():
    image = spot_image(centre=(2.0, 720.0))
    roi = detect_roi(image, half_size=(10, 5)).roi
    assert roi == Roi(0, 715, 12, 725)
    roi = detect_roi(spot_image(centre=(383.0, 727.0)), half_size=(10, 5)).roi
    assert roi == Roi(373, 722, 383, 727)


def test_median_prefilter_sizes():
    image = np.arange(25.0).reshape(5, 5)
    assert np.array_equal(median_prefilter(image, size=1), image)
    assert median_prefilter(image, size=3)[2, 2] == 12.0
    for bad in (0, 2, 4, 2.5, -3):
        with pytest.raises(BadInput, match="median_prefilter"):
            median_prefilter(image, size=bad)
    with pytest.raises(BadInput, match="roi_half_size"):
        detect_roi(image, half_size=(0, 3))


def test_validate_roi_accepts_inclusive_corners_and_names_bad_fields():
    roi = validate_roi(150, 280, 224, 328, image_shape=(728, 384))
    assert (roi.width, roi.height) == (75, 49)
    assert roi.slices == (slice(280, 329), slice(150, 225))
    assert validate_roi(0, 0, 383, 727, image_shape=(728, 384)) == Roi(0, 0, 383, 727)
    with pytest.raises(BadInput, match=r"roi\.x1 = 384 is outside the image: columns run from 0 to 383"):
        validate_roi(0, 0, 384, 10, image_shape=(728, 384))
    with pytest.raises(BadInput, match=r"roi\.y0 = -1"):
        validate_roi(0, -1, 5, 10, image_shape=(728, 384))
    with pytest.raises(BadInput, match=r"roi\.x1 = 3 must be >= roi\.x0 = 5"):
        validate_roi(5, 0, 3, 10, image_shape=(728, 384))
    with pytest.raises(BadInput, match=r"roi\.y1 must be an integer"):
        validate_roi(5, 0, 30, 10.5, image_shape=(728, 384))


@pytest.mark.parametrize("mode", ["tile", "sum"])
def test_streamed_frame_sum_equals_whole_sum(mode):
    rng = np.random.default_rng(1)
    layout = small_layout(mode)
    sensors = [rng.poisson(5.0, size=(37, 20, 8)).astype(np.uint32) for _ in range(3)]
    whole = combine(sensors, layout=layout).sum(axis=0, dtype=np.float64)
    acc = FrameSumAccumulator(layout)
    for start in range(0, 37, 10):
        acc.add([s[start:start + 10] for s in sensors])
    assert acc.n_frames == 37
    assert np.array_equal(acc.image, whole)
    if mode == "tile":
        assert np.array_equal(acc.coverage[0], [1] * 8 + [0] + [1] * 8 + [0] + [1] * 8)
        assert np.all(acc.image[:, [8, 17]] == 0)
        assert np.array_equal(acc.image[:, 9:17], sensors[1].sum(axis=0)[:, ::-1])


def test_frame_sum_accumulator_rejects_inconsistent_blocks():
    acc = FrameSumAccumulator(small_layout())
    with pytest.raises(BadInput, match="disagree on the number of frames"):
        acc.add([np.zeros((3, 20, 8)), np.zeros((2, 20, 8)), np.zeros((3, 20, 8))])
    with pytest.raises(BadInput, match=r"\(frames, rows, cols\)"):
        acc.add([np.zeros((20, 8))] * 3)
