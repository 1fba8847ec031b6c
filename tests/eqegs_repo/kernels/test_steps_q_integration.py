"""Q-integration kernels checked against known truth: beam centre, S(q) ring, masks, sectors,
sparse integration (constant images, streaming, variances), background subtraction."""
import math

import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import q_integration as qi
from eqegs_repo.kernels.q_integration import engines
from eqegs_repo.kernels.reconstruction import Roi, detect_roi

SHAPE = (240, 200)
GEOMETRY = qi.DetectorGeometry(wavelength_nm=0.086025, pixel_size_mm=0.0726, distance_mm=60.0)


def ring_image(centre, shape=SHAPE, q_peak=14.0, q_width=1.0, spot_sigma=1.2, spot_counts=2e5, base=20.0):
    """Frame-summed image: direct-beam spot (σ = spot_sigma px) + S(q) ring + flat level."""
    yy, xx = np.indices(shape)
    r = np.hypot(xx - centre[0], yy - centre[1])
    q = 4 * math.pi / 0.086025 * np.sin(0.5 * np.arctan(r * 0.0726 / 60.0))
    spot = spot_counts / (2 * math.pi * spot_sigma**2) * np.exp(-(r**2) / (2 * spot_sigma**2))
    return base * (1 + 3 * np.exp(-((q - q_peak) ** 2) / (2 * q_width**2))) + spot


@pytest.mark.parametrize("centre", [(90.3, 110.7), (101.0, 99.5), (77.77, 140.25)])
def test_beam_centre_within_a_tenth_of_a_pixel(centre):
    rng = np.random.default_rng(0)
    image = rng.poisson(ring_image(centre)).astype(np.float64)
    roi = detect_roi(image).roi
    for method in ("centroid", "gauss2d"):
        found = qi.find_beam_centre(image, roi=roi, threshold_frac=0.1, iterations=2, method=method)
        assert abs(found.x - centre[0]) < 0.1 and abs(found.y - centre[1]) < 0.1, (method, found)


def test_beam_centre_recentres_an_off_centre_roi_and_rejects_empty_roi():
    centre = (90.3, 110.7)
    image = ring_image(centre)
    off = Roi(70, 100, 100, 120)  # the spot sits near the ROI's right edge
    found = qi.find_beam_centre(image, roi=off, iterations=3)
    assert abs(found.x - centre[0]) < 0.1 and abs(found.y - centre[1]) < 0.1
    assert abs((found.roi.x0 + found.roi.x1) / 2 - 90) <= 1
    with pytest.raises(BadInput, match="no direct beam"):
        qi.find_beam_centre(np.ones(SHAPE), roi=Roi(0, 0, 10, 10))
    with pytest.raises(BadInput, match="centroid_threshold_frac"):
        qi.find_beam_centre(image, roi=off, threshold_frac=1.0)


def test_a_hot_pixel_in_the_roi_leaves_the_centre_where_it_is():
    centre = (90.3, 110.7)
    image = np.random.default_rng(1).poisson(ring_image(centre)).astype(np.float64)
    roi = detect_roi(image).roi
    image[116, 95] += 25_000.0  # 1000 x the ring level, as bright as the beam's peak pixel, 7 px away
    for method in ("centroid", "gauss2d"):
        found = qi.find_beam_centre(image, roi=roi, method=method)
        assert abs(found.x - centre[0]) < 0.1 and abs(found.y - centre[1]) < 0.1, found
    pulled = qi.find_beam_centre(image, roi=roi, spike_factor=None)  # the app's centroid
    assert math.hypot(pulled.x - centre[0], pulled.y - centre[1]) > 0.5, pulled
    with pytest.raises(BadInput, match="centre_spike_factor must be a number > 1 or null, got 0.5"):
        qi.find_beam_centre(image, roi=roi, spike_factor=0.5)


def test_a_pixel_crossing_the_threshold_moves_the_subtracted_centroid_by_next_to_nothing():
    """The default weights max(w - t, 0) change continuously with the counts; the app's cut jumps."""
    centre = (90.3, 110.7)
    image = np.random.default_rng(2).poisson(ring_image(centre, spot_sigma=1.3)).astype(np.float64)
    roi = Roi(80, 100, 100, 120)
    found = {mode: qi.find_beam_centre(image, roi=roi, threshold_mode=mode) for mode in ("subtract", "cut")}
    base = found["cut"].border_median
    weights = image[roi.slices] - base
    threshold = 0.1 * weights.max()
    _, xs = np.indices(weights.shape)
    dx = xs + roi.x0 - centre[0]  # the dimmest pixel above the threshold, off the centre along x
    candidates = np.flatnonzero((weights.ravel() > threshold) & (np.abs(dx.ravel()) > 1.5))
    pixel = candidates[np.argmin(weights.ravel()[candidates])]
    y, x = np.unravel_index(pixel, weights.shape)
    above, below = image.copy(), image.copy()  # that pixel 0.1 % above and 0.1 % below the threshold
    above[roi.y0 + y, roi.x0 + x] = base + threshold * 1.001
    below[roi.y0 + y, roi.x0 + x] = base + threshold * 0.999
    moved = {}
    for mode in ("subtract", "cut"):
        one, other = (qi.find_beam_centre(im, roi=roi, threshold_mode=mode) for im in (above, below))
        moved[mode] = math.hypot(one.x - other.x, one.y - other.y)
    assert moved["cut"] > 0.01 and moved["subtract"] < 1e-4, moved
    for mode, centre_found in found.items():  # both unbiased for a symmetric beam
        assert math.hypot(centre_found.x - centre[0], centre_found.y - centre[1]) < 0.05, (mode, centre_found)
    with pytest.raises(BadInput, match="centroid_threshold_mode must be one of"):
        qi.find_beam_centre(image, roi=roi, threshold_mode="soft")


def test_clipping_spikes_keeps_a_narrow_beam_centred():
    for sigma in (0.5, 1.2, 2.5):
        image = ring_image((90.3, 110.7), spot_sigma=sigma)
        clipped = qi.find_beam_centre(image, roi=Roi(70, 90, 110, 130))
        plain = qi.find_beam_centre(image, roi=Roi(70, 90, 110, 130), spike_factor=None)
        assert (clipped.x, clipped.y) == (plain.x, plain.y), sigma


def test_pixel_to_q_at_known_radius():
    r = np.array([0.0, 100.0, 270.0])
    two_theta = np.arctan(r * 0.0726 / 100.0)
    expected = 4 * math.pi / 0.086025 * np.sin(two_theta / 2)
    geometry = qi.DetectorGeometry(wavelength_nm=0.086025, pixel_size_mm=0.0726, distance_mm=100.0)
    assert np.allclose(geometry.q(r), expected, rtol=1e-12)
    assert abs(geometry.q(270.0) - 14.115) < 0.01  # PHYSICS.md §2.5: q = 14 nm^-1 near r = 270 px
    assert np.allclose(geometry.radius(geometry.q(r)), r)
    with pytest.raises(BadInput, match="distance_mm"):
        qi.DetectorGeometry(wavelength_nm=0.086025, pixel_size_mm=0.0726, distance_mm=0.0)


def test_ring_peak_at_the_right_q_within_one_bin():
    centre = (90.3, 110.7)
    image = ring_image(centre, q_peak=10.0, base=20.0, spot_counts=0.0) - 20.0  # ring near r = 114 px
    keep = qi.direct_beam_keep(SHAPE, centre=centre, halfwidth=5)
    bins = qi.RadialBins.uniform(bin_px=1.0, r_max_px=200.0)
    integrator = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY, bins=bins, keep=keep)
    profile = integrator.profile(integrator.integrate(image[None])[0])
    peak = int(np.nanargmax(profile))
    assert 100 < peak < 130
    bin_width_q = integrator.q[peak + 1] - integrator.q[peak]
    assert abs(integrator.q[peak] - 10.0) <= bin_width_q
    q_edges = np.linspace(6.0, 14.0, 41)
    in_q = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY,
                                     bins=qi.RadialBins.from_q_edges(q_edges, geometry=GEOMETRY), keep=keep)
    profile_q = in_q.profile(in_q.integrate(image[None])[0])
    assert abs(in_q.q[np.nanargmax(profile_q)] - 10.0) <= 0.2
    assert np.allclose(in_q.q, 0.5 * (q_edges[1:] + q_edges[:-1]), atol=1e-9)


def constant_profile_error(integrator, value):
    block = np.full((3,) + SHAPE, value, dtype=np.float32)
    profile = integrator.profile(integrator.integrate(block))
    used = integrator.npix > 0
    return np.max(np.abs(profile[:, used] / value - 1.0))


@pytest.mark.parametrize("splitting", ["none", "bbox"])
def test_constant_image_gives_constant_profile_with_and_without_masks(splitting):
    centre = (90.3, 110.7)
    bins = qi.RadialBins.uniform(bin_px=1.0, r_max_px=200.0)
    hot = np.zeros(SHAPE, bool)
    hot[[5, 50, 200], [7, 150, 30]] = True
    masks = {
        "none": None,
        "beam+hot": qi.direct_beam_keep(SHAPE, centre=centre, halfwidth=12) & ~hot,
        "sectors": (qi.sector_keep(SHAPE, centre=centre, sectors=[(350, 20), (100, 150)])
                    & qi.direct_beam_keep(SHAPE, centre=centre, halfwidth=3)),
    }
    for name, keep in masks.items():
        integrator = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY, bins=bins, keep=keep,
                                               pixel_splitting=splitting)
        assert constant_profile_error(integrator, 7.0) < 1e-6, name
        if keep is not None:
            assert integrator.npix.sum() <= keep.sum() + 1e-6


@pytest.mark.parametrize("splitting", ["none", "bbox"])
def test_per_bin_pixel_q_mean_and_extremes_are_those_of_the_pixels_in_the_bin(splitting):
    centre = (90.3, 110.7)
    bins = qi.RadialBins.uniform(bin_px=3.0, r_min_px=20.0, r_max_px=120.0)
    keep = qi.sector_keep(SHAPE, centre=centre, sectors=[(10, 100)])
    integrator = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY, bins=bins, keep=keep,
                                           pixel_splitting=splitting)
    q_pixels = GEOMETRY.q(qi.pixel_radius(SHAPE, centre=centre)).ravel()
    dense = integrator.matrix.toarray()
    for b in range(integrator.n_bins):
        used = dense[b] > 0
        if not used.any():
            assert np.isnan(integrator.q_pixel_min[b]) and np.isnan(integrator.q_pixel_max[b])
            continue
        assert integrator.q_pixel_min[b] == q_pixels[used].min() and integrator.q_pixel_max[b] == q_pixels[used].max()
        assert integrator.q_mean[b] == pytest.approx(np.average(q_pixels, weights=dense[b]), rel=1e-12)
    assert np.isfinite(integrator.q_pixel_min).sum() > 20


def test_bbox_splitting_conserves_pixels_and_variance_uses_squared_weights():
    centre = (90.3, 110.7)
    bins = qi.RadialBins.uniform(bin_px=0.5, r_max_px=400.0)
    split = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY, bins=bins, pixel_splitting="bbox")
    assert split.npix.sum() == pytest.approx(SHAPE[0] * SHAPE[1], rel=1e-9)
    assert not split.is_binary
    rng = np.random.default_rng(3)
    frame = rng.random(SHAPE)
    dense = split.matrix.toarray()
    assert np.allclose(split.integrate_variance(frame[None])[0], (dense**2) @ frame.ravel())
    assert np.allclose(split.integrate(frame[None])[0], dense @ frame.ravel())
    plain = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY, bins=bins)
    assert plain.is_binary
    assert np.array_equal(plain.integrate_variance(frame[None]), plain.integrate(frame[None]))


def test_sectors_follow_clockwise_convention_and_wrap_through_zero():
    centre = (100.0, 120.0)
    phi = qi.azimuth_deg(SHAPE, centre=centre)
    assert phi[120, 150] == 0.0    # +x
    assert phi[150, 100] == 90.0   # below the centre on screen (y down): clockwise
    assert phi[120, 50] == 180.0
    assert phi[90, 100] == 270.0
    wrapped = qi.sector_keep(SHAPE, centre=centre, sectors=[(350, 10)])
    union = (qi.sector_keep(SHAPE, centre=centre, sectors=[(350, 360)])
             | qi.sector_keep(SHAPE, centre=centre, sectors=[(0, 10)]))
    assert np.array_equal(wrapped, union)
    assert wrapped[120, 150] and not wrapped[120, 50] and not wrapped[150, 100]
    assert np.array_equal(wrapped, (phi >= 350) | (phi <= 10))
    both = qi.sector_keep(SHAPE, centre=centre, sectors=[(350, 10), (80, 100)])
    assert np.array_equal(both, wrapped | ((phi >= 80) & (phi <= 100)))
    assert qi.sector_keep(SHAPE, centre=centre, sectors=[]).all()


def test_sector_errors_are_clear():
    centre = (100.0, 120.0)
    with pytest.raises(BadInput, match=r"sectors\[0\] = \[10, 20\] degrees selects no usable pixel"):
        qi.sector_keep(SHAPE, centre=centre, sectors=[(10, 20)], valid=np.zeros(SHAPE, bool))
    with pytest.raises(BadInput, match=r"sectors\[1\] = \[10, 400\] must lie within \[0, 360\]"):
        qi.sector_keep(SHAPE, centre=centre, sectors=[(0, 10), (10, 400)])
    with pytest.raises(BadInput, match=r"sectors\[0\] must be a pair"):
        qi.sector_keep(SHAPE, centre=centre, sectors=[(10,)])
    corner = (0.0, 0.0)  # only 0..90 degrees exist around the top-left corner
    with pytest.raises(BadInput, match=r"\[180, 260\]"):
        qi.sector_keep(SHAPE, centre=corner, sectors=[(180, 260)])


def test_integrator_rejects_bins_and_masks_without_pixels():
    centre = (90.3, 110.7)
    with pytest.raises(BadInput, match=r"no used pixel falls in the radial bins r = 500.0..600.0 px"):
        qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY, bins=qi.RadialBins(np.array([500.0, 600.0])))
    with pytest.raises(BadInput, match="no used pixel"):
        qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY,
                                  bins=qi.RadialBins.uniform(bin_px=1, r_max_px=50), keep=np.zeros(SHAPE, bool))
    with pytest.raises(BadInput, match="mask has shape"):
        qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY,
                                  bins=qi.RadialBins.uniform(bin_px=1, r_max_px=50), keep=np.ones((3, 3), bool))
    with pytest.raises(BadInput, match="radial_bin_px"):
        qi.RadialBins.uniform(bin_px=0.0, r_max_px=50)
    with pytest.raises(BadInput, match="pixel_splitting"):
        qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY,
                                  bins=qi.RadialBins.uniform(bin_px=1, r_max_px=50), pixel_splitting="full")
    integrator = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY,
                                           bins=qi.RadialBins.uniform(bin_px=1, r_max_px=50))
    with pytest.raises(BadInput, match=r"block must be \(frames, 240, 200\)"):
        integrator.integrate(np.zeros((2, 10, 10)))


def test_streamed_blocks_and_threads_match_the_whole_stack():
    centre = (90.3, 110.7)
    rng = np.random.default_rng(7)
    stack = rng.poisson(4.0, size=(23,) + SHAPE).astype(np.uint32)
    keep = (qi.direct_beam_keep(SHAPE, centre=centre, halfwidth=10)
            & qi.sector_keep(SHAPE, centre=centre, sectors=[(300, 60)]))
    integrator = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY,
                                           bins=qi.RadialBins.uniform(bin_px=1.0, r_max_px=250.0), keep=keep)
    whole = integrator.integrate(stack)
    streamed = np.concatenate([integrator.integrate(stack[a:a + 5]) for a in range(0, 23, 5)])
    assert np.array_equal(whole, streamed)
    assert np.array_equal(whole, integrator.integrate(stack.reshape(23, -1), workers=2))
    dense = integrator.matrix.toarray().astype(np.float64)
    assert np.array_equal(whole, stack.reshape(23, -1).astype(np.float64) @ dense.T)
    for dtype in (np.uint16, np.int32, np.float32, np.float64):
        assert np.array_equal(integrator.integrate(stack.astype(dtype)), whole), dtype
    forward = np.concatenate([qi.forward_spectrum(stack[a:a + 5], centre=centre, halfwidth=4) for a in range(0, 23, 5)])
    assert np.array_equal(forward, stack[:, 107:115, 87:95].sum(axis=(1, 2)))


def test_forward_box_and_background_subtraction_in_q_space():
    assert qi.box_bounds((100, 100), centre=(10.0, 20.0), halfwidth=20) == (0, 41, 0, 31)
    assert qi.box_bounds((100, 100), centre=(50.0, 50.0), halfwidth=20) == (30, 71, 30, 71)  # 41 x 41 px
    with pytest.raises(BadInput, match="holds no pixel"):
        qi.box_bounds((100, 100), centre=(500.0, 50.0), halfwidth=20)
    fwd_s, fwd_b = np.array([10.0, 30.0]), np.array([5.0, 15.0])
    assert qi.background_scale(fwd_s, fwd_b, mode="forward_ratio") == 2.0
    assert qi.background_scale(mode="unity") == 1.0
    assert qi.background_scale(mode="manual", bg_scale=0.5) == 0.5
    with pytest.raises(BadInput, match="bg_scale_mode must be one of"):
        qi.background_scale(mode="auto")
    with pytest.raises(BadInput, match="positive sum"):
        qi.background_scale(fwd_s, np.zeros(2), mode="forward_ratio")
    # Linear: integrate each run once, subtract in q space == integrate the difference image.
    centre = (90.3, 110.7)
    rng = np.random.default_rng(11)
    sample = rng.poisson(6.0, size=(4,) + SHAPE).astype(np.float32)
    background = rng.poisson(3.0, size=(4,) + SHAPE).astype(np.float32)
    integrator = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY,
                                           bins=qi.RadialBins.uniform(bin_px=2.0, r_max_px=200.0))
    i_s, i_b = integrator.integrate(sample), integrator.integrate(background)
    diff, var = qi.subtract_background(i_s, i_s, i_b, i_b, k=1.5)
    assert np.allclose(diff, integrator.integrate(sample.astype(np.float64) - 1.5 * background), atol=1e-3)
    assert np.allclose(var, i_s + 2.25 * i_b)
    with pytest.raises(BadInput, match="background run has shape"):
        qi.subtract_background(i_s, i_s, i_b[:3], i_b[:3], k=1.0)


def test_hot_pixels_flagged_but_not_the_ring_or_gap_edges():
    centre = (90.3, 110.7)
    rng = np.random.default_rng(5)
    image = rng.poisson(ring_image(centre, spot_counts=0.0) * 5000).astype(np.float64)  # frame-sum levels
    coverage = np.ones(SHAPE, int)
    coverage[:, 60:64] = 0  # a sensor gap
    image[coverage == 0] = 0.0
    image[30, 40] *= 1.2
    image[200, 150] += 50000
    keep = qi.hot_pixel_keep(image, centre=centre, n_mad=10.0, valid=qi.coverage_keep(coverage))
    assert not keep[30, 40] and not keep[200, 150]
    assert keep.sum() == SHAPE[0] * SHAPE[1] - 2
    assert qi.hot_pixel_keep(image, centre=centre, n_mad=None).all()
    with pytest.raises(BadInput, match="hot_pixel_mad"):
        qi.hot_pixel_keep(image, centre=centre, n_mad=-1.0)


def test_dead_pixels_are_zeros_where_the_ring_level_makes_a_zero_improbable():
    centre = (90.3, 110.7)
    radius = qi.pixel_radius(SHAPE, centre=centre)
    image = np.where(radius < 60, 1000.0, 3.0)  # bright inside r = 60 px, 3 counts outside
    image[100, 120] = 0.0   # bright ring: dead
    image[20, 20] = 0.0     # 3-count ring: a zero there is counting statistics (e^-3 = 5 %)
    valid = np.ones(SHAPE, bool)
    valid[110, 80] = False  # not in the valid area: never reported
    image[110, 80] = 0.0
    keep = qi.dead_pixel_keep(image, centre=centre, valid=valid)
    assert np.argwhere(~keep).tolist() == [[100, 120]]
    assert qi.dead_pixel_keep(image, centre=centre, valid=valid, min_level=2.0)[20, 20] == np.False_
    assert np.allclose(qi.ring_level(image, centre=centre, valid=valid)[:3], 3.0)
    with pytest.raises(BadInput, match="no valid pixel"):
        qi.dead_pixel_keep(image, centre=centre, valid=np.zeros(SHAPE, bool))


def test_pixel_normalisation_solid_angle_and_polarisation():
    centre = (90.3, 110.7)
    assert qi.pixel_normalisation(SHAPE, centre=centre, geometry=GEOMETRY) is None
    norm = qi.pixel_normalisation(SHAPE, centre=centre, geometry=GEOMETRY, solid_angle_correction=True)
    tth = GEOMETRY.two_theta(qi.pixel_radius(SHAPE, centre=centre))
    assert np.allclose(norm, np.cos(tth) ** 3)
    pol = qi.pixel_normalisation(SHAPE, centre=centre, geometry=GEOMETRY, polarisation_factor=1.0)
    phi = np.radians(qi.azimuth_deg(SHAPE, centre=centre))
    assert np.allclose(pol, 1 - np.sin(tth) ** 2 * np.cos(phi) ** 2)
    bins = qi.RadialBins.uniform(bin_px=1.0, r_max_px=200.0)
    integrator = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY, bins=bins, pixel_weights=norm)
    # An image proportional to the solid angle integrates to a flat corrected profile.
    profile = integrator.profile(integrator.integrate((5.0 * norm)[None])[0])
    assert np.nanmax(np.abs(profile - 5.0)) < 1e-5
    with pytest.raises(BadInput, match="polarisation_factor"):
        qi.pixel_normalisation(SHAPE, centre=centre, geometry=GEOMETRY, polarisation_factor=2.0)


ENGINES_AVAILABLE = ["scipy"] + (["numba"] if qi.labelled_sum_kernel() is not None else [])


def masked_stack_integrator(n_frames=23, bin_px=1.0, seed=7):
    centre = (90.3, 110.7)
    rng = np.random.default_rng(seed)
    stack = rng.poisson(4.0, size=(n_frames,) + SHAPE).astype(np.uint32)
    keep = (qi.direct_beam_keep(SHAPE, centre=centre, halfwidth=10)
            & qi.sector_keep(SHAPE, centre=centre, sectors=[(300, 60)]))
    integrator = qi.RadialIntegrator.build(SHAPE, centre=centre, geometry=GEOMETRY,
                                           bins=qi.RadialBins.uniform(bin_px=bin_px, r_max_px=250.0), keep=keep)
    return stack, integrator


@pytest.mark.parametrize("engine", ENGINES_AVAILABLE)
def test_each_engine_streamed_threaded_and_any_dtype_equal_the_dense_product(engine):
    stack, integrator = masked_stack_integrator()
    exact = stack.reshape(23, -1).astype(np.float64) @ integrator.matrix.toarray().astype(np.float64).T
    assert np.array_equal(integrator.integrate(stack, engine=engine), exact)
    for size in (1, 2, 5):  # odd and even blocks, single frames
        streamed = np.concatenate([integrator.integrate(stack[a:a + size], engine=engine) for a in range(0, 23, size)])
        assert np.array_equal(streamed, exact), size
    assert np.array_equal(integrator.integrate(stack, workers=2, engine=engine), exact)
    assert np.array_equal(integrator.integrate(stack, workers=3, engine=engine), exact)
    assert np.array_equal(integrator.integrate_variance(stack, engine=engine), exact)
    for dtype in (np.uint8, np.uint16, np.int16, np.int32, np.int64, np.uint64, np.float16, np.float32, np.float64):
        assert np.array_equal(integrator.integrate(stack.astype(dtype), engine=engine), exact), dtype
    non_contiguous = np.asfortranarray(stack)
    assert np.array_equal(integrator.integrate(non_contiguous, engine=engine), exact)
    read_only = stack.copy()
    read_only.setflags(write=False)  # as np.load(..., mmap_mode="r") gives
    assert np.array_equal(integrator.integrate(read_only, workers=2, engine=engine), exact)
    assert integrator.integrate(stack[:0], engine=engine).shape == (0, integrator.n_bins)
    real = np.random.default_rng(1).normal(size=(4,) + SHAPE)
    expected = real.reshape(4, -1) @ integrator.matrix.toarray().astype(np.float64).T
    assert np.allclose(integrator.integrate(real, engine=engine), expected, rtol=1e-6, atol=1e-5)


def test_numba_and_scipy_engines_give_identical_sums():
    pytest.importorskip("numba")
    stack, integrator = masked_stack_integrator(n_frames=9)
    for dtype in (np.uint32, np.float32):
        block = stack.astype(dtype)
        assert np.array_equal(integrator.integrate(block, engine="numba"), integrator.integrate(block, engine="scipy"))
        assert np.array_equal(integrator.integrate(block), integrator.integrate(block, engine="numba"))  # auto


def test_numba_engine_sums_integers_exactly_beyond_32_bits_and_handles_many_bins():
    pytest.importorskip("numba")
    stack, integrator = masked_stack_integrator(n_frames=3)
    big = np.full_like(stack, 2**31 + 7)  # a uint32 accumulator would wrap around
    exact = integrator.npix[None, :] * float(2**31 + 7) * np.ones((3, 1))
    assert np.array_equal(integrator.integrate(big, engine="numba"), exact)
    assert exact.max() > 2**36
    # More bins than int16 labels can number: labels switch to int32.
    small = (40, 30)
    fine = qi.RadialIntegrator.build(small, centre=(3.2, 4.1), geometry=GEOMETRY,
                                     bins=qi.RadialBins.uniform(bin_px=0.001, r_max_px=45.0))
    assert fine.n_bins > 2**15
    frames = np.random.default_rng(2).poisson(3.0, size=(3,) + small).astype(np.uint16)
    assert np.array_equal(fine.integrate(frames, engine="numba"), fine.integrate(frames, engine="scipy"))
    assert np.array_equal(fine.integrate(frames, engine="numba").sum(axis=1), frames.sum(axis=(1, 2)).astype(float))


def test_engine_choice_and_its_errors(monkeypatch):
    stack, integrator = masked_stack_integrator(n_frames=2)
    with pytest.raises(BadInput, match=r"engine must be one of \('auto', 'numba', 'scipy'\), got 'gpu'"):
        integrator.integrate(stack, engine="gpu")
    split = qi.RadialIntegrator.build(SHAPE, centre=(90.3, 110.7), geometry=GEOMETRY,
                                      bins=qi.RadialBins.uniform(bin_px=1.0, r_max_px=250.0),
                                      pixel_splitting="bbox")
    if qi.labelled_sum_kernel() is not None:
        with pytest.raises(BadInput, match="engine 'numba' sums a 0/1 matrix only"):
            split.integrate(stack, engine="numba")
    assert np.allclose(split.integrate(stack), split.integrate(stack, engine="scipy"))  # auto falls back
    monkeypatch.setattr(engines, "labelled_sum_kernel", lambda: None)  # numba not installed
    with pytest.raises(BadInput, match=r"engine 'numba' needs numba: pip install 'eqegs_repo\[fast\]'"):
        integrator.integrate(stack, engine="numba")
    assert np.array_equal(integrator.integrate(stack), integrator.integrate(stack, engine="scipy"))


def test_centre_sensitive_pixels_hold_every_pixel_that_moves():
    shape, centre, margin = (60, 50), (21.37, 33.81), 0.05
    edges = qi.RadialBins.uniform(bin_px=1.0, r_max_px=60.0).edges_px
    sectors = [(300.0, 45.0), (100.0, 170.0)]
    sensitive = qi.centre_sensitive(shape, centre=centre, margin=margin, radial_edges=edges, box_halfwidths=(4, 9),
                                    sectors=sectors)

    def places(c):
        r = qi.pixel_radius(shape, centre=c)
        return (np.searchsorted(edges, r, side="right"), qi.direct_beam_keep(shape, centre=c, halfwidth=4),
                qi.direct_beam_keep(shape, centre=c, halfwidth=9), qi.sector_keep(shape, centre=c, sectors=sectors))

    before = places(centre)
    moved = np.zeros(shape, bool)
    for angle in np.linspace(0, 2 * np.pi, 24, endpoint=False):
        shifted = (centre[0] + margin * np.cos(angle), centre[1] + margin * np.sin(angle))
        for a, b in zip(before, places(shifted)):
            moved |= a != b
    assert moved.any() and not (moved & ~sensitive).any()
    assert 0.05 < sensitive.mean() < 0.3  # about 2 x margin / bin width of the pixels, plus borders
    assert not qi.centre_sensitive(shape, centre=centre, margin=margin).any()


def test_hot_pixel_score_is_what_hot_pixel_keep_thresholds():
    rng = np.random.default_rng(4)
    image = rng.poisson(200.0, size=(40, 50)).astype(float)
    image[[3, 17, 30], [5, 40, 22]] += [400, 150, 90]
    valid = np.ones(image.shape, bool)
    valid[:, 10] = False
    score = qi.hot_pixel_score(image, centre=(20.2, 18.7), valid=valid)
    assert np.isnan(score[:, 10]).all()
    for n_mad in (3.0, 5.0, 10.0):
        keep = qi.hot_pixel_keep(image, centre=(20.2, 18.7), n_mad=n_mad, valid=valid)
        assert np.array_equal(~keep[valid], score[valid] > n_mad)
    assert set(zip(*np.nonzero(score > 10))) >= {(3, 5), (17, 40)}


def test_ring_excess_ranks_hot_pixels_where_the_mad_is_zero():
    centre, valid = (20.2, 18.7), np.ones((40, 50), bool)
    rng = np.random.default_rng(5)
    image = rng.poisson(200.0, size=(40, 50)).astype(float)
    image[[3, 17], [5, 40]] += [400, 150]
    excess = qi.ring_excess(image, centre=centre, valid=valid)
    score = qi.hot_pixel_score(image, centre=centre, valid=valid)
    assert np.array_equal(np.argsort(excess.ravel(), kind="stable"), np.argsort(score.ravel(), kind="stable"))
    sparse_counts = np.zeros((40, 50))  # most pixels read 0: the MAD of z is 0
    sparse_counts[rng.integers(0, 40, 200), rng.integers(0, 50, 200)] = 1
    sparse_counts[30, 7], sparse_counts[2, 45] = 9, 30  # two hot ones
    score = qi.hot_pixel_score(sparse_counts, centre=centre, valid=valid)
    assert np.isinf(score[30, 7]) and np.isinf(score[2, 45])  # tied: the score cannot rank them
    excess = qi.ring_excess(sparse_counts, centre=centre, valid=valid)
    assert np.isfinite(excess).all() and excess[2, 45] > excess[30, 7] > np.sort(excess.ravel())[-3]
