"""What the figures share: matplotlib on demand, a figure without pyplot, checks of the
dataset a figure needs, legends outside the data, values with errors, the beam centre and the
angle sectors of a dataset."""
import numpy as np

from eqegs_repo.errors import BadInput, optional_import
from eqegs_repo.measured import with_error

Q_LABEL = "q (nm$^{-1}$)"


def _matplotlib(module):
    """A matplotlib module, or MissingExtra naming the ``plot`` extra when it is not installed."""
    return optional_import(module, "drawing figures")


DEFAULT_DPI = 100


def _figure(default_size, *, size=None, dpi=None):
    """A constrained-layout Figure. ``size``: (width, height) in inches, None for the figure's
    ``default_size``; ``dpi``: dots per inch of the saved and shown image, None for
    :data:`DEFAULT_DPI` (``fig.savefig`` uses the figure's dpi unless given another)."""
    size = default_size if size is None else size
    try:
        width, height = (float(v) for v in size)
    except (TypeError, ValueError):
        raise BadInput(f"figures: size must be (width, height) in inches, got {size!r}") from None
    if not (0 < width <= 100 and 0 < height <= 100):
        raise BadInput(f"figures: size must be (width, height) in inches, each in (0, 100], got {size!r}")
    dpi = DEFAULT_DPI if dpi is None else dpi
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 10 <= dpi <= 1200:
        raise BadInput(f"figures: dpi must be a number from 10 to 1200, got {dpi!r}")
    return _matplotlib("matplotlib.figure").Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def html_image(fig, alt=""):
    """``<img src="data:image/png;base64,...">`` of a Figure, PNG at the figure's dpi, shown at its
    size in CSS pixels (inches x 100, never wider than the page): a figure inside an HTML report or
    page that has no files beside it (the docs site draws its figures so)."""
    import base64
    import html
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    width = round(fig.get_size_inches()[0] * 100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            f'style="width: {width}px; max-width: 100%">')


def _require(ds, names, figure, hint):
    """Raise BadInput when ``ds`` lacks any of ``names`` (variables or coordinates)."""
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise BadInput(f"figures.{figure}: the dataset lacks {', '.join(missing)} (it has "
                       f"{', '.join(sorted(map(str, ds.data_vars))) or 'no variables'}); {hint}")


def _values(ds, name):
    return np.asarray(ds[name].values, dtype=float)


def _centre(ds):
    """(x, y) of the beam centre from the attrs, or None."""
    if "centre_x" in ds.attrs and "centre_y" in ds.attrs:
        return float(ds.attrs["centre_x"]), float(ds.attrs["centre_y"])
    return None


def _step_parameters(ds, step_type):
    """The ``{field: value}`` of a spice type recorded in ``attrs["parameters"]`` (ours), or {}."""
    parameters = ds.attrs.get("parameters")
    found = parameters.get(step_type) if isinstance(parameters, dict) else None
    return found if isinstance(found, dict) else {}


def _isf_parameter(ds, name):
    """A parameter of the E-spectrum step (``attrs["isf_parameters"]`` or the spice record)."""
    recorded = ds.attrs.get("isf_parameters")
    if isinstance(recorded, dict) and recorded.get(name) is not None:
        return recorded[name]
    return _step_parameters(ds, "e_spectrum").get(name)


def _legend(ax, **kwargs):
    """The legend right of the axes, so that it never covers data (constrained layout makes
    room for it); ``loc="best"`` is not enough when the lines fill the axes."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize="small", **kwargs)


def _legend_below(fig, ax):
    """The legend of an image below the figure (an image fills its axes), on grey so that
    white markers show."""
    handles, labels = ax.get_legend_handles_labels()
    return fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small",
                      facecolor="0.75")


def _fit_label(ds):
    """``fit (exp):`` then ``f_q = 0.70 ± 0.04``, ``τ = 99 ± 3 ns`` (and ``β = ...`` for kww),
    one per line, of an E-spectrum dataset."""
    fit = ds.attrs.get("fit") if isinstance(ds.attrs.get("fit"), dict) else {}
    parts = [f"{name} = {with_error(ds[var].item(), ds[f'{var}_error'].item(), unit)}"
             for name, var, unit in (("f_q", "f_q", ""), ("τ", "tau", "ns"), ("β", "beta", ""))
             if var in ds and f"{var}_error" in ds and (var != "beta" or fit.get("model") == "kww")]
    model = f" ({fit['model']})" if fit.get("model") else ""
    return f"fit{model}:\n" + "\n".join(parts) if parts else "fit"


def _limits(low, high, margin=0.05):
    """(low, high) widened by ``margin`` of their span on each side."""
    span = (high - low) or abs(high) or 1.0
    return low - margin * span, high + margin * span


def _mark_centre(ax, centre, colour="r"):
    if centre is not None:
        ax.plot([centre[0]], [centre[1]], "+", color=colour, ms=12, mew=1.5, label="beam centre")


def sector_list(ds):
    """The angle sectors ``[[start, end], ...]`` (deg, 0 = +x, clockwise on screen) used by a
    q-integration dataset: from its recorded parameters when ``angle_mode`` is ``specify``, else
    ``attrs["sectors"]`` (read from rdf.npz); [] when every azimuth is used."""
    params = _step_parameters(ds, "q_integration")
    if params:
        return [list(map(float, s)) for s in params.get("sectors") or []] \
            if params.get("angle_mode") == "specify" else []
    return [list(map(float, s)) for s in ds.attrs.get("sectors") or []]
