"""eqegs_repo.figures: every figure draws what it says from tiny cooked data (Agg backend)."""
import io

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from eqegs_repo import BadInput, figures
from tests.helpers.cooktrees import image_params, repository, seed_spice, write_runs  # noqa: E402

SECTORS = [[300.0, 60.0], [120.0, 240.0]]


@pytest.fixture(scope="module")
def cooked(tmp_path_factory):
    """Two tiny samples with a background and two angle sectors, cooked through the chain."""
    base = tmp_path_factory.mktemp("figures")
    params = image_params(n_frames=512)
    write_runs(base, params, [11, 12])
    repo = repository(base, cache=False)
    prop = repo["2025A1234"]
    seed_spice(prop, params, n_mc=40, bg_n_points=8, isf_error_threshold=0.1)
    prop.spice.update("q_integration", angle_mode="specify", sectors=SECTORS)
    s = prop["S001"]
    return {"rec": s.cook("reconstruction"), "q": s.cook("q_integration"),
            "q0": s.cook("q_integration", bg_sample_id=None), "e": s.cook("e_spectrum_and_isf"),
            "e2": prop["S002"].cook("e_spectrum_and_isf")}


def png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_every_export_figure_renders_to_png(cooked):
    drawn = {**figures.export_figures("reconstruction", cooked["rec"]),
             **figures.export_figures("q_integration", cooked["q"], cooked["rec"]),
             **figures.export_figures("e_spectrum_and_isf", cooked["e"], cooked["q"])}
    assert {"01_frame_summed_image.png", "02_frame_summed_image.png", "06_forward_counts.png",
            "07_subtracted_image.png", "08_mask.png", "09_masked_image.png", "10_intensity_q.png",
            "12_velocity_spectra.png", "13_structure_factor.png", "17_energy_spectra.png",
            "26_transforms.png", "29_spectra.png", "39_isf.png"} == set(drawn)
    for name, draw in drawn.items():
        assert png(draw()).startswith(b"\x89PNG"), name
    # without the upstream dataset the figure needing it is left out (q) or drawn without QE (E)
    assert "02_frame_summed_image.png" not in figures.export_figures("q_integration", cooked["q"])
    with pytest.raises(BadInput, match="unknown step 'cook'"):
        figures.export_figures("cook", cooked["q"])


def test_frame_summed_image_marks_roi_and_given_centre(cooked):
    ax = figures.frame_summed_image(cooked["rec"], centre=(20.5, 30.25)).axes[0]
    centre = lines(ax)["beam centre"]
    assert (centre.get_xdata()[0], centre.get_ydata()[0]) == (20.5, 30.25)
    x0, y0, x1, y1 = cooked["rec"].attrs["roi"]
    (roi,) = ax.patches
    assert (roi.get_x(), roi.get_width()) == (x0 - 0.5, x1 - x0 + 1)


def test_mask_draws_sectors_from_the_recorded_parameters(cooked):
    assert figures.sector_list(cooked["q"]) == SECTORS
    ax = figures.mask(cooked["q"]).axes[0]
    wedges = ax.patches
    assert [(w.theta1, w.theta2) for w in wedges] == [(300.0, 420.0), (120.0, 240.0)]
    assert wedges[0].center == pytest.approx((cooked["q"].attrs["centre_x"], cooked["q"].attrs["centre_y"]))
    # explicit sectors win; [] draws none
    assert [(w.theta1, w.theta2) for w in figures.mask(cooked["q"], sectors=[[10, 20]]).axes[0].patches] == [(10, 20)]
    assert not figures.mask(cooked["q"], sectors=[]).axes[0].patches


def test_masked_subtracted_image_blanks_unused_pixels(cooked):
    image = figures.subtracted_image(cooked["q"], masked=True).axes[0].images[0].get_array()
    keep = cooked["q"]["mask"].values
    assert np.isnan(np.asarray(image.filled(np.nan))[~keep]).all()
    np.testing.assert_allclose(np.asarray(image)[keep], cooked["q"]["image_diff"].values[keep])
    assert "after background subtraction" in figures.subtracted_image(cooked["q"]).axes[0].get_title()


def test_background_subtraction_shows_before_after_and_their_difference(cooked):
    q, q0 = cooked["q"], cooked["q0"]
    by_label = lines(figures.background_subtraction(q, q0).axes[0])
    before = by_label["before subtraction"].get_ydata()
    background = next(v for k, v in by_label.items() if k.startswith("k x background")).get_ydata()
    np.testing.assert_allclose(before, q0["profile"].values)
    np.testing.assert_allclose(before - background, q["profile"].values)
    k = q.attrs["background"]["k"]
    assert f"k = {k:.4g}" in next(k for k in by_label if k.startswith("k x background"))
    with pytest.raises(BadInput, match="unsubtracted has a background subtracted"):
        figures.background_subtraction(q, q)
    with pytest.raises(BadInput, match="ds has no background subtracted"):
        figures.background_subtraction(q0, q0)
    with pytest.raises(BadInput, match="q bins differ"):
        figures.background_subtraction(q, q0.isel(q=slice(0, 10)))


def test_forward_counts_shows_sample_and_scaled_background(cooked):
    by_label = lines(figures.forward_counts(cooked["q"]).axes[0])
    np.testing.assert_allclose(by_label["sample"].get_ydata(), cooked["q"]["forward_sample"].values)
    np.testing.assert_allclose(by_label["background run"].get_ydata(), cooked["q"]["forward_background"].values)


def test_velocity_spectra_separate_kept_and_cut_frames(cooked):
    e, q = cooked["e"], cooked["q"]
    left, right = figures.velocity_spectra(e, q).axes[:2]
    kept = e["kept"].values
    assert lines(left)["kept"].get_xdata().size == kept.sum()
    assert lines(left)["cut"].get_xdata().size == (~kept).sum()
    qe = lines(right)["quasi-elastic (q range), kept"].get_ydata()
    expected = q["intensity"].values[:, e["in_q_range"].values].sum(axis=1)
    np.testing.assert_allclose(qe, expected[kept] / expected[kept].mean())
    assert set(lines(figures.velocity_spectra(e).axes[1])) == {"forward, kept", "forward, cut"}
    with pytest.raises(BadInput, match="qds has 10 frames but ds has 512"):
        figures.velocity_spectra(e, q.isel(frame=slice(0, 10)))


def test_energy_spectra_shade_the_wing_regions_of_bg_n_points(cooked):
    e = cooked["e"]
    for ax, name in zip(figures.energy_spectra(e).axes, ("forward", "qe")):
        np.testing.assert_allclose(lines(ax)["background fit (flat)"].get_ydata(), e[f"{name}_background"].values)
        left, right = [p.get_x() for p in ax.patches], [p.get_x() + p.get_width() for p in ax.patches]
        step = float(e.energy[1] - e.energy[0])
        assert left[0] == pytest.approx(float(e.energy[0]) - step / 2)
        assert right[0] == pytest.approx(float(e.energy[7]) + step / 2)  # bg_n_points = 8
        assert right[1] == pytest.approx(float(e.energy[-1]) + step / 2)


def test_transforms_show_real_and_imaginary_parts(cooked):
    e = cooked["e"]
    real, imag = figures.transforms(e).axes
    np.testing.assert_allclose(lines(real)["quasi-elastic"].get_ydata(), e["qe_transform_real"].values)
    np.testing.assert_allclose(lines(imag)["forward"].get_ydata(), e["forward_transform_imag"].values)


def test_isf_shows_fit_with_errors_and_threshold(cooked):
    e = cooked["e"]
    top, bottom = figures.isf(e).axes
    (fit_label,) = [k for k in lines(top) if k.startswith("fit (exp):")]
    f_q = figures.with_error(e["f_q"].item(), e["f_q_error"].item())
    tau = figures.with_error(e["tau"].item(), e["tau_error"].item(), "ns")
    assert f"f_q = {f_q}" in fit_label and f"τ = {tau}" in fit_label and "β" not in fit_label
    assert fit_label.count("±") == 2
    assert lines(bottom)["threshold 0.1"].get_ydata()[0] == 0.1
    kww = cooked["e"].copy()
    kww.attrs["fit"] = {**kww.attrs["fit"], "model": "kww"}
    assert "β = " in [k for k in lines(figures.isf(kww).axes[0]) if k.startswith("fit (kww):")][0]


def render(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def test_legends_never_cover_data(cooked):
    drawn = {**figures.export_figures("reconstruction", cooked["rec"]),
             **figures.export_figures("q_integration", cooked["q"], cooked["rec"]),
             **figures.export_figures("e_spectrum_and_isf", cooked["e"], cooked["q"]),
             "background_subtraction": lambda: figures.background_subtraction(cooked["q"], cooked["q0"]),
             "relaxation_summary": lambda: figures.relaxation_summary([cooked["e"], cooked["e2"]])}
    checked = 0
    for name, draw in drawn.items():
        fig = draw()
        renderer = render(fig)
        for legend in [ax.get_legend() for ax in fig.axes if ax.get_legend()] + fig.legends:
            box = legend.get_window_extent(renderer)
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 + 0.5 and box.y0 >= fig.bbox.y0, name
            for ax in fig.axes:  # outside every axes (image, lines, colour bar), so over no data
                assert not box.overlaps(ax.get_window_extent(renderer)), (name, legend.get_texts()[0].get_text())
                for line in ax.get_lines():
                    xy = ax.transData.transform(line.get_xydata())
                    inside = ((xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1))
                    assert not inside.any(), (name, line.get_label())
            checked += 1
    assert checked >= 14


def test_isf_axes_fit_the_drawn_points_with_their_errors(cooked):
    e = cooked["e"]
    top, bottom = figures.isf(e).axes
    t, isf, sigma = e["t"].values, e["isf"].values, e["isf_sigma"].values
    drawn = np.concatenate([c.lines[0].get_xdata() for c in top.containers])
    shown = np.isin(t, drawn)
    accepted = e["accepted"].values
    assert shown[accepted].all() and not shown[t <= 0].any()
    last = np.flatnonzero(accepted).max()  # drawn: every t > 0 up to one step past the last fitted
    np.testing.assert_array_equal(shown, (t > 0) & (np.arange(t.size) <= min(last + 1, t.size - 1)))
    low = min((isf - sigma)[shown].min(), lines(top)[next(k for k in lines(top) if k.startswith("fit"))].get_ydata().min())
    high = max((isf + sigma)[shown].max(), e["isf_fit"].values[shown].max())
    y0, y1 = top.get_ylim()
    span = high - low
    assert y0 <= low and y1 >= high  # nothing clipped, error bars included
    assert low - y0 <= 0.06 * span and y1 - high <= 0.06 * span  # and no empty band (was up to 1.1)
    x0, x1 = top.get_xlim()
    assert x0 <= 0 and t[shown].max() < x1 <= t[shown].max() * 1.06  # the last point is not on the edge
    assert bottom.get_ylim()[1] >= max(sigma[shown].max(), 0.1)
    left_out = (t > t[shown].max()).sum()
    if left_out:
        assert any(f"({left_out} later points" in k for k in lines(top)) or \
            any(f"({left_out} later points" in c.get_label() for c in top.containers)


def test_relaxation_summary_from_datasets_and_from_a_reanalysis_table(cooked):
    datasets = [cooked["e"], cooked["e2"]]
    table = figures.summary_table(datasets)
    assert list(table["sample"]) == ["S001", "S002"]
    assert table["tau_ns"][1] == cooked["e2"]["tau"].item()
    top, _ = figures.relaxation_summary(datasets, x="sample").axes
    (points,) = [c for c in top.containers]
    np.testing.assert_allclose(points.lines[0].get_ydata(), table["tau_ns"])
    assert [t.get_text() for t in figures.relaxation_summary(datasets, x="sample").axes[1].get_xticklabels()] == \
        ["2025A1234/S001", "2025A1234/S002"]
    frame = pd.DataFrame({"proposal": ["P", "P", "P"], "sample": ["S1", "S1", "S2"], "status": ["ok", "ok", "failed"],
                          "tau_ns": [10.0, 20.0, np.nan], "tau_error_ns": [1.0, 2.0, np.nan],
                          "f_q": [0.8, 0.7, np.nan], "f_q_error": [0.01, 0.02, np.nan],
                          "q_min": [10.0, 12.0, 10.0], "q_max": [12.0, 14.0, 12.0],
                          "q_weighted": [11.2, 13.1, 11.2], "q_pixel_min": [9.9, 11.95, 9.9],
                          "q_pixel_max": [12.1, 14.05, 12.1]})
    top, _ = figures.relaxation_summary(frame, x="q").axes
    (series,) = top.containers  # the failed sample is dropped: one series
    np.testing.assert_allclose(series.lines[0].get_xdata(), [11.2, 13.1])  # the weighted q, not the midpoint
    (bar,) = [c for c in series.lines[2] if np.ptp(c.get_segments()[0][:, 1]) == 0]  # horizontal: the pixels used
    np.testing.assert_allclose([segment[:, 0] for segment in bar.get_segments()], [[9.9, 12.1], [11.95, 14.05]])
    top, _ = figures.relaxation_summary(datasets, x="q").axes
    np.testing.assert_allclose(np.concatenate([c.lines[0].get_xdata() for c in top.containers]),
                               [d.attrs["q_weighted"] for d in datasets])
    with pytest.raises(BadInput, match="x must be 'q' or 'sample'"):
        figures.relaxation_summary(frame, x="time")
    with pytest.raises(BadInput, match="lacks columns"):
        figures.relaxation_summary(frame.drop(columns="q_max"))
    with pytest.raises(BadInput, match="no fitted result"):
        figures.relaxation_summary(frame.iloc[2:])


def test_missing_variables_are_named(cooked):
    with pytest.raises(BadInput, match=r"velocity_spectra: the dataset lacks velocity, kept, forward_counts"):
        figures.velocity_spectra(cooked["q"])
    with pytest.raises(BadInput, match="transforms: the dataset lacks"):
        figures.transforms(cooked["q"])


def test_demo_report_has_the_table_figures_and_paths(tmp_path):
    from eqegs_repo import Repository
    from eqegs_repo.simulate import demo, synthetic

    synthetic.write_tree(tmp_path, proposals=("2025A1234",), preset="tiny", seed=3, samples_per_proposal=2)
    root = synthetic.eqegs_root(tmp_path)
    repo = Repository(f"{root}/{{proposal}}/{{sample}}", spice_url="memory://report-test",
                      cache_url=str(tmp_path / "cache"))
    params = synthetic.load_truth(tmp_path, synthetic.DEFAULT_ACCOUNT, "2025A1234", "S001").params
    demo.seed_spice(repo["2025A1234"], params, bg_n_points=8, isf_error_threshold=0.2, n_mc=20)
    table = demo.recovered_vs_truth(repo, tmp_path)
    report = demo.write_report(repo, tmp_path, table)
    text = report.read_text()
    assert report == tmp_path / "report.md" and (tmp_path / "report.html").exists()
    assert f"| 2025A1234 | S002 | {table.tau_ns[1]:.3g} |" in text and "recovered within 2 sigma: tau" in text
    images = [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert len(images) == 5 and all((tmp_path / name).read_bytes().startswith(b"\x89PNG") for name in images)
    assert str(root) in text and str(tmp_path / "cache") in text
    assert "<img src='report-figures/isf.png'" in (tmp_path / "report.html").read_text()
    with pytest.raises(BadInput, match="report.md.*already exist.*overwrite=True"):
        demo.write_report(repo, tmp_path, table)
    text_only = demo.write_report(repo, tmp_path, table, overwrite=True, draw=False).read_text()
    assert "No figures: drawing them needs matplotlib" in text_only and "![" not in text_only
    assert not list(tmp_path.glob(".*.tmp-*")) and not list((tmp_path / "report-figures").glob(".*"))


def png_size(data):
    """(width, height) in pixels from a PNG's IHDR chunk."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_every_figure_takes_a_size_and_dpi_for_publication(cooked):
    q, e = cooked["q"], cooked["e"]
    calls = {"frame_summed_image": (cooked["rec"],), "forward_counts": (q,), "subtracted_image": (q,),
             "mask": (q,), "background_subtraction": (q, cooked["q0"]), "intensity_profile": (e,),
             "velocity_spectra": (e, q), "energy_spectra": (e,), "spectra": (e,), "transforms": (e,),
             "isf": (e,), "relaxation_summary": ([e, cooked["e2"]],)}
    for name, args in calls.items():
        default = getattr(figures, name)(*args)
        assert default.dpi == figures.DEFAULT_DPI == 100, name
        fig = getattr(figures, name)(*args, size=(3.5, 2.5), dpi=300)
        assert tuple(fig.get_size_inches()) == (3.5, 2.5) and fig.dpi == 300, name
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")   # the figure's dpi
    assert png_size(buffer.getvalue()) == (1050, 750)


@pytest.mark.parametrize("size, dpi, named", [((0, 3), None, "size"), ((3,), None, "size"), ("big", None, "size"),
                                              ((200, 3), None, "size"), (None, 5, "dpi"), (None, "300", "dpi"),
                                              (None, float("nan"), "dpi")])
def test_a_bad_size_or_dpi_is_refused_naming_it(cooked, size, dpi, named):
    with pytest.raises(BadInput, match=f"figures: {named} must be"):
        figures.isf(cooked["e"], size=size, dpi=dpi)


def test_html_image_embeds_the_png_at_the_figures_dpi_shown_at_its_size(cooked):
    import base64
    import re

    text = figures.html_image(figures.isf(cooked["e"], size=(6.0, 4.0), dpi=200), alt='ISF "fit"')
    data = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', text).group(1))
    assert png_size(data) == (1200, 800)
    assert 'alt="ISF &quot;fit&quot;"' in text and "width: 600px" in text and "max-width: 100%" in text
