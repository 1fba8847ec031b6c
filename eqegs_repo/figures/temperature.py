"""The figure of τ against temperature across samples: ln τ against 1000/T with the errors of τ and
a fitted Arrhenius or VFT law (docs/reanalysis.md#across-temperatures)."""
import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.figures.drawing import _figure, _legend
from eqegs_repo.measured import with_error


def tau_against_temperature(*, temperature_k, tau_ns, tau_error_ns, fit=None, size=None, dpi=None):
    """τ (ns, log scale) against 1000/T (K⁻¹) with error bars, and the law of ``fit`` (a
    :class:`~eqegs_repo.kernels.temperature_laws.TemperatureFit`) as a line with its parameters
    in the legend. ``temperature_k``, ``tau_ns``, ``tau_error_ns``: shape (n,). An Arrhenius law
    is a straight line here. Returns a matplotlib Figure."""
    temperature, tau, error = (np.asarray(a, dtype=np.float64).ravel() for a in (temperature_k, tau_ns, tau_error_ns))
    if not temperature.size or not temperature.size == tau.size == error.size:
        raise BadInput("figures.tau_against_temperature: temperature_k, tau_ns and tau_error_ns need one "
                       f"entry per point; found {temperature.size}, {tau.size}, {error.size}")
    fig = _figure((5.5, 4.0), size=size, dpi=dpi)
    ax = fig.add_subplot()
    ax.errorbar(1000.0 / temperature, tau, yerr=error, fmt="o", capsize=3, label="samples")
    if fit is not None:
        grid = np.linspace(temperature.min(), temperature.max(), 200)
        if fit.law == "arrhenius":
            label = f"Arrhenius, E_a = {with_error(fit.ea_ev, fit.ea_error_ev)} eV"
        else:
            label = (f"VFT, B = {with_error(fit.value('b_k'), fit.error('b_k'))} K, "
                     f"T0 = {with_error(fit.value('t0_k'), fit.error('t0_k'))} K")
        ax.plot(1000.0 / grid, fit.tau_ns(grid), "-", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (K$^{-1}$)")
    ax.set_ylabel("tau (ns)")
    _legend(ax)
    return fig
