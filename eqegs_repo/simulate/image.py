"""The detector image of the synthetic measurement: pixel geometry, structure factor, air scattering,
direct beam, sample dynamics, the expected counts of a sample or background run and their noise
(docs/physics.md#forward-model).

Pure functions, numpy in, numpy out; pixel coordinates x = column (right), y = row (down); lengths in mm.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from eqegs_repo.kernels.physics import (
    PIXEL_SIZE_MM,
    WAVELENGTH_NM,
    q_from_two_theta,
    solid_angle,
    two_theta_from_q,
    two_theta_from_radius,
)
from eqegs_repo.simulate.drive import frame_phase
from eqegs_repo.simulate.spectra import (
    Analyser,
    EnergyGrid,
    SourceSpectrum,
    doppler_factor,
    forward_transmission,
    isf_truth,
    quasielastic_transmission,
    tau_power_law,
)

# --------------------------------------------------------------------------------------------
# Geometry and scattering (docs/physics.md#forward-model, detector image)
# --------------------------------------------------------------------------------------------


def polarisation_factor(two_theta: np.ndarray, phi_deg: np.ndarray, polarisation_deg: float | None) -> np.ndarray:
    """P = 1 − sin²2θ·cos²(φ − φ_pol) for a beam linearly polarised along φ_pol; 1 when None."""
    two_theta = np.asarray(two_theta, dtype=np.float64)
    if polarisation_deg is None:
        return np.ones_like(two_theta)
    return 1.0 - np.sin(two_theta) ** 2 * np.cos(np.deg2rad(np.asarray(phi_deg) - float(polarisation_deg))) ** 2


def structure_factor(q: np.ndarray, s0: float = 20.0, amplitude: float = 3.0, q_peak: float = 14.0, width: float = 2.0) -> np.ndarray:
    """S(q) = s₀·[1 + A·exp(−(q − q_p)²/2w²)] (molecular-liquid first peak), arbitrary units."""
    q = np.asarray(q, dtype=np.float64)
    return float(s0) * (1.0 + float(amplitude) * np.exp(-((q - float(q_peak)) ** 2) / (2.0 * float(width) ** 2)))


def air_scattering(q: np.ndarray, c0: float = 5.0, kappa_c: float = 1.0) -> np.ndarray:
    """Air/cell scattering C(q) = c₀/(q² + κ_c²), elastic, arbitrary units (same as S)."""
    q = np.asarray(q, dtype=np.float64)
    return float(c0) / (q**2 + float(kappa_c) ** 2)


def direct_beam(r_px: np.ndarray, n_db: float, sigma_px: float) -> np.ndarray:
    """Direct-beam spot D = N_db/(2πσ²)·exp(−r²/2σ²): N_db integrated over the image (per unit flux)."""
    r = np.asarray(r_px, dtype=np.float64)
    if not sigma_px > 0:
        raise ValueError(f"direct-beam sigma must be > 0 px, got {sigma_px!r}")
    return float(n_db) / (2.0 * np.pi * sigma_px**2) * np.exp(-(r**2) / (2.0 * sigma_px**2))


@dataclass(frozen=True)
class PixelGeometry:
    """Per-pixel geometry of a flat detector normal to the beam (docs/physics.md#forward-model);
    arrays of shape (H, W).

    ``x``/``y`` are column/row indices, ``r_px`` the distance to the beam centre (x_c, y_c) in
    pixels, ``two_theta`` in rad, ``q`` in nm⁻¹, ``phi_deg`` = atan2(y − y_c, x − x_c) mod 360
    (0° = +x, clockwise on screen), ``solid_angle`` ΔΩ in sr.
    """

    shape: tuple[int, int]
    centre_xy: tuple[float, float]
    distance_mm: float
    pixel_mm: float
    wavelength_nm: float
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    r_px: np.ndarray = field(repr=False)
    two_theta: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)
    phi_deg: np.ndarray = field(repr=False)
    solid_angle: np.ndarray = field(repr=False)


def pixel_geometry(
    shape: tuple[int, int],
    centre_xy: tuple[float, float],
    distance_mm: float = 100.0,
    pixel_mm: float = PIXEL_SIZE_MM,
    wavelength_nm: float = WAVELENGTH_NM,
) -> PixelGeometry:
    """Compute r, 2θ, q, φ and ΔΩ for every pixel of an image of ``shape`` = (rows H, cols W)."""
    rows, cols = (int(n) for n in shape)
    if rows < 1 or cols < 1:
        raise ValueError(f"image shape must be positive (rows, cols), got {shape!r}")
    if not (distance_mm > 0 and pixel_mm > 0 and wavelength_nm > 0):
        raise ValueError(
            f"distance_mm, pixel_mm and wavelength_nm must be > 0, got {distance_mm!r}, {pixel_mm!r}, {wavelength_nm!r}"
        )
    x_c, y_c = (float(c) for c in centre_xy)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    r = np.hypot(x - x_c, y - y_c)
    two_theta = two_theta_from_radius(r, pixel_mm=pixel_mm, distance_mm=distance_mm)
    return PixelGeometry(
        shape=(rows, cols),
        centre_xy=(x_c, y_c),
        distance_mm=float(distance_mm),
        pixel_mm=float(pixel_mm),
        wavelength_nm=float(wavelength_nm),
        x=x,
        y=y,
        r_px=r,
        two_theta=two_theta,
        q=q_from_two_theta(two_theta, wavelength_nm=wavelength_nm),
        phi_deg=np.mod(np.rad2deg(np.arctan2(y - y_c, x - x_c)), 360.0),
        solid_angle=solid_angle(two_theta, pixel_mm=pixel_mm, distance_mm=distance_mm),
    )


@dataclass(frozen=True)
class Dynamics:
    """Sample dynamics (docs/physics.md#forward-model): τ(q), f_q(q) and the KWW exponent β.

    τ_q = τ₀·(q/q₀)^−n (``tau0_ns``, ``q0``, ``exponent``) unless ``tau_table`` gives
    ((q, τ ns), ...) pairs, interpolated linearly in log q – log τ (held constant outside).
    f_q = ``f_q`` when ``f_q_width`` is None, else the Debye–Waller-like Gaussian
    f_q·exp(−q²/2w²).  ``beta`` = 1 is a simple exponential (Lorentzian in energy).
    """

    tau0_ns: float = 100.0
    q0: float = 12.0
    exponent: float = 2.0
    f_q: float = 0.7
    f_q_width: float | None = None
    beta: float = 1.0
    tau_table: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self):
        if not self.tau0_ns > 0 or not self.q0 > 0:
            raise ValueError(f"Dynamics.tau0_ns and q0 must be > 0, got {self.tau0_ns!r}, {self.q0!r}")
        if not 0 <= self.f_q <= 1:
            raise ValueError(f"Dynamics.f_q must lie in [0, 1], got {self.f_q!r}")
        if self.f_q_width is not None and not self.f_q_width > 0:
            raise ValueError(f"Dynamics.f_q_width must be > 0 nm⁻¹ or None, got {self.f_q_width!r}")
        if not 0 < self.beta <= 2:
            raise ValueError(f"Dynamics.beta must lie in (0, 2], got {self.beta!r}")
        if self.tau_table is not None:
            table = tuple((float(q), float(t)) for q, t in self.tau_table)
            qs = [q for q, _ in table]
            if len(table) < 2 or any(q <= 0 or t <= 0 for q, t in table) or qs != sorted(set(qs)):
                raise ValueError(
                    "Dynamics.tau_table must hold >= 2 (q > 0, tau > 0) pairs with strictly increasing q, "
                    f"got {self.tau_table!r}"
                )
            object.__setattr__(self, "tau_table", table)

    def tau(self, q: np.ndarray) -> np.ndarray:
        """τ(q) in ns (q in nm⁻¹, > 0)."""
        q = np.asarray(q, dtype=np.float64)
        if self.tau_table is None:
            return tau_power_law(q, self.tau0_ns, self.q0, self.exponent)
        table = np.array(self.tau_table)
        if np.any(q <= 0):
            raise ValueError("Dynamics.tau needs q > 0 nm⁻¹")
        return np.exp(np.interp(np.log(q), np.log(table[:, 0]), np.log(table[:, 1])))

    def nonergodicity(self, q: np.ndarray) -> np.ndarray:
        """f_q(q), dimensionless, same shape as q."""
        q = np.asarray(q, dtype=np.float64)
        if self.f_q_width is None:
            return np.full(q.shape, float(self.f_q))
        return float(self.f_q) * np.exp(-(q**2) / (2.0 * self.f_q_width**2))

    def isf(self, q: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """Ground truth F(q,t)/S(q) = f_q·exp(−(t/τ_q)^β); broadcasts q against t."""
        return isf_truth(t_ns, self.nonergodicity(q), self.tau(q), self.beta)

    def to_mapping(self) -> dict:
        """JSON-friendly parameters."""
        return {
            "tau0_ns": self.tau0_ns,
            "q0": self.q0,
            "exponent": self.exponent,
            "f_q": self.f_q,
            "f_q_width": self.f_q_width,
            "beta": self.beta,
            "tau_table": None if self.tau_table is None else [list(p) for p in self.tau_table],
        }


@dataclass(frozen=True)
class Scatterers:
    """Static scattering strengths (docs/physics.md#forward-model):
    S(q) = s₀[1 + A·exp(−(q−q_p)²/2w²)] and the air/cell term C(q) = c₀/(q² + κ_c²), in the
    same arbitrary units (counts per unit flux per sr)."""

    s0: float = 20.0
    amplitude: float = 3.0
    q_peak: float = 14.0
    width: float = 2.0
    c0: float = 5.0
    kappa_c: float = 1.0

    def structure(self, q: np.ndarray) -> np.ndarray:
        """S(q)."""
        return structure_factor(q, self.s0, self.amplitude, self.q_peak, self.width)

    def air(self, q: np.ndarray) -> np.ndarray:
        """C(q)."""
        return air_scattering(q, self.c0, self.kappa_c)


RUN_KINDS = ("sample", "background")
BACKGROUND_MODELS = ("cell_attenuated", "unattenuated")
"""How the air/cell scattering C(q) of the sample run is attenuated (docs/synthetic.md#the-background-model):
``cell_attenuated`` by the sample's transmission τ_s, as the scattering of a sample cell's windows and
the air next to the sample is; ``unattenuated`` not at all (air far from the sample)."""


class ImageModel:
    """Expected counts μ(f, i) of one run on the detector canvas, evaluated per frame block
    (docs/physics.md#forward-model).

    Sample run:      μ_s = Φ_f·[τ_s D T₀(f) + ΔΩ P S(q) T_q(f) + τ_C ΔΩ C(q) T₀(κ v_f g)] + d
    Background run:  μ_b = Φ_f·[D T₀(f) + ΔΩ C(q) T₀(κ v_f g)] + d      ("scattering noise")

    τ_C is the sample's transmission τ_s with ``background_model`` ``"cell_attenuated"`` (the
    default: the cell and air scattering pass the sample, as in a real sample cell) and 1 with
    ``"unattenuated"`` (:data:`BACKGROUND_MODELS`).

    Φ_f = ``flux``·(1 + ``flux_drift``·(φ_f − ½)) with φ_f the frame phase (a linear change of the
    flux over the cycle; 0 = constant).  D is the direct beam with ``direct_beam_counts`` N_db
    (per unit flux) and width ``beam_sigma_px``; τ_s is ``sample_transmission``; d is ``dark``
    (counts per frame and pixel).  P is the polarisation factor (1 when ``polarisation_deg`` is
    None).  With ``thickness_path_factor`` the scattered photons see t_A/cos 2θ.

    T_q and the angle-dependent T₀ are tabulated on ``n_q_nodes`` q nodes spanning the image and
    interpolated linearly in q per pixel (error far below the Poisson noise for ≥ 128 nodes).
    """

    def __init__(
        self,
        velocity: np.ndarray,
        geometry: PixelGeometry,
        run: str = "sample",
        dynamics: Dynamics = Dynamics(),
        scatterers: Scatterers = Scatterers(),
        source: SourceSpectrum = SourceSpectrum(),
        analyser: Analyser = Analyser(),
        grid: EnergyGrid = EnergyGrid(),
        doppler_angle_model: str = "cos2theta",
        thickness_path_factor: bool = False,
        flux: float = 1.0e4,
        flux_drift: float = 0.0,
        direct_beam_counts: float = 20.0,
        beam_sigma_px: float = 1.2,
        sample_transmission: float = 1.0,
        dark: float = 0.5,
        polarisation_deg: float | None = None,
        n_q_nodes: int = 256,
        background_model: str = "cell_attenuated",
    ):
        if run not in RUN_KINDS:
            raise ValueError(f"run must be one of {RUN_KINDS}, got {run!r}")
        if background_model not in BACKGROUND_MODELS:
            raise ValueError(f"background_model must be one of {BACKGROUND_MODELS}, got {background_model!r}")
        if not flux > 0 or dark < 0 or direct_beam_counts < 0:
            raise ValueError(
                f"flux must be > 0, dark and direct_beam_counts >= 0; got {flux!r}, {dark!r}, {direct_beam_counts!r}"
            )
        if not 0 < sample_transmission <= 1:
            raise ValueError(f"sample_transmission must lie in (0, 1], got {sample_transmission!r}")
        if int(n_q_nodes) < 2:
            raise ValueError(f"n_q_nodes must be >= 2, got {n_q_nodes!r}")
        self.velocity = np.asarray(velocity, dtype=np.float64)
        if self.velocity.ndim != 1 or self.velocity.size < 1:
            raise ValueError(f"velocity must be a non-empty 1-D array (n_frames,), got shape {self.velocity.shape}")
        self.geometry = geometry
        self.run = run
        n_frames = self.velocity.size
        self.flux_per_frame = float(flux) * (1.0 + float(flux_drift) * (frame_phase(n_frames) - 0.5))
        self.dark = float(dark)

        q = geometry.q.ravel()
        q_lo = max(float(q.min()), 1e-3)
        q_hi = max(float(q.max()), q_lo * 1.001)
        self.q_nodes = np.linspace(q_lo, q_hi, int(n_q_nodes))
        n_nodes = self.q_nodes.size
        position = np.clip((q - q_lo) / (self.q_nodes[1] - q_lo), 0.0, n_nodes - 1.0)
        lower = np.minimum(position.astype(np.intp), n_nodes - 2)
        upper_weight = position - lower

        node_two_theta = two_theta_from_q(self.q_nodes, wavelength_nm=geometry.wavelength_nm)
        node_g = doppler_factor(node_two_theta, doppler_angle_model)
        self.t0 = forward_transmission(self.velocity, source, analyser, grid)
        self.t0_nodes = forward_transmission(self.velocity, source, analyser, grid, doppler=node_g)
        self._direct = direct_beam(geometry.r_px.ravel(), direct_beam_counts, beam_sigma_px)
        amplitudes = [(geometry.solid_angle * scatterers.air(geometry.q)).ravel()]
        if run == "sample":
            self._direct = self._direct * float(sample_transmission)
            if background_model == "cell_attenuated":
                amplitudes[0] = amplitudes[0] * float(sample_transmission)
            path = 1.0 / np.cos(node_two_theta) if thickness_path_factor else 1.0
            self.tq_nodes = quasielastic_transmission(
                self.velocity,
                dynamics.nonergodicity(self.q_nodes),
                dynamics.tau(self.q_nodes),
                dynamics.beta,
                node_g,
                source,
                analyser,
                grid,
                path,
            )
            polar = polarisation_factor(geometry.two_theta, geometry.phi_deg, polarisation_deg)
            amplitudes.append((geometry.solid_angle * polar * scatterers.structure(geometry.q)).ravel())
            self._node_table = np.concatenate([self.t0_nodes, self.tq_nodes], axis=1)
        else:
            self.tq_nodes = None
            self._node_table = self.t0_nodes
        # Sparse (n_terms·n_nodes, n_pixels) matrix: amplitude × linear-interpolation weight, so
        # that node_table[frames] @ matrix gives the angle-dependent terms on every pixel.
        pixels = np.arange(q.size)
        rows, cols, values = [], [], []
        for term, amplitude in enumerate(amplitudes):
            offset = term * n_nodes
            rows += [offset + lower, offset + lower + 1]
            cols += [pixels, pixels]
            values += [amplitude * (1.0 - upper_weight), amplitude * upper_weight]
        self._interpolation = sparse.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(amplitudes) * n_nodes, q.size),
        )

    @property
    def n_frames(self) -> int:
        return self.velocity.size

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (rows H, cols W)."""
        return self.geometry.shape

    def expected(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """μ for frames [start, stop): float64 array (stop − start, H, W), counts per frame."""
        stop = self.n_frames if stop is None else int(stop)
        if not 0 <= start < stop <= self.n_frames:
            raise ValueError(f"frame range [{start}, {stop}) outside 0..{self.n_frames}")
        frames = slice(int(start), stop)
        mu = np.asarray(self._interpolation.T @ self._node_table[frames].T).T
        mu += self._direct[None, :] * self.t0[frames, None]
        mu *= self.flux_per_frame[frames, None]
        mu += self.dark
        return mu.reshape((stop - start,) + self.shape)


def detector_counts(
    mu: np.ndarray, rng: np.random.Generator, read_noise: float = 0.0, n_trains: int = 1, noise_free: bool = False
) -> np.ndarray:
    """Noisy counts for expected counts ``mu`` (any shape): Poisson(μ) photons, plus optional
    Gaussian read noise of σ = read_noise·√n_trains, rounded and clipped at 0
    (docs/physics.md#forward-model, noise and files).

    Returns float64 integer-valued counts of the same shape.  Consumes ``rng`` in C order, so a
    stack drawn in consecutive frame blocks equals one draw of the whole stack.
    ``noise_free``: return μ itself (float64, not rounded) and draw nothing.
    """
    if noise_free:
        return np.array(mu, dtype=np.float64)
    counts = rng.poisson(mu).astype(np.float64)
    if read_noise > 0:
        counts += float(read_noise) * np.sqrt(float(n_trains)) * rng.standard_normal(counts.shape)
        np.clip(np.rint(counts, out=counts), 0.0, None, out=counts)
    return counts
