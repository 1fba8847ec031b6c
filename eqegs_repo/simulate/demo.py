"""The demo chain: seed spice that matches a synthetic tree, cook its samples, compare with truth.

Used by ``eqegs demo`` and the docs' examples. :func:`write_tree` writes the synthetic tree
whole or not at all (a demo stopped while writing leaves no partial tree to be shown later).
:func:`seed_spice` writes the records a
synthetic proposal needs (sensor layout and geometry of the simulation, the suggested box
sizes, the background sample, calibrations on the measured waveform with the cos 2θ angle
factor, a q range); :func:`recovered_vs_truth` cooks every sample and lines the fitted τ and f_q
up against the truth of :mod:`eqegs_repo.simulate.synthetic`; :func:`write_report` writes what the demo
did and where the results are as ``report.md`` and ``report.html`` (with figures when matplotlib
is installed).
"""
import dataclasses
import datetime
import html
import math
import os
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from eqegs_repo.cooking import progress
from eqegs_repo.cooking.cache import user_cache_folder
from eqegs_repo.errors import BadInput, install_hint, optional_import
from eqegs_repo.io import config
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.simulate import synthetic


PRESET = "demo"
"""The size preset of ``eqegs demo``: the tiny detector on a ±10 mm/s drive with 1024 and 768
frames, where the default E-spectrum settings are unbiased (docs/synthetic.md#the-demo)."""
E_SPECTRUM = {"isf_error_threshold": 0.05, "n_mc": 500}
"""The ``e_spectrum`` record ``eqegs demo`` seeds: the project's defaults, written out."""
NOISE_FREE_DIR = "noise-free"
"""Folder (in the demo's folder) of the noise-free copy of the demo tree: the same samples and
seeds with the expected counts instead of their Poisson draws."""


def seed_spice(proposal, params, q_range=(11.0, 13.0), background=synthetic.BACKGROUND_SAMPLE_ID,
               missing_only=False, **e_spectrum):
    """Seed default-anchor records of ``proposal`` matching the synthetic ``params``.

    ``background``: the background sample key (None: no subtraction); ``e_spectrum``: fields of
    the ``e_spectrum`` record (e.g. ``n_mc=200``). ``missing_only``: leave the types that have a
    live record at the default anchor already (the records of a demo stopped while seeding).
    The background scale is the one right for the simulated ``background_model``
    (docs/synthetic.md#the-background-model): ``forward_ratio`` (the default, not written) for
    ``cell_attenuated``, ``manual`` with ``bg_scale`` = k for ``unattenuated``.
    Returns the records written.
    """
    mappings = synthetic.spice_mappings(params)
    records = {name: {k: v for k, v in mappings[name].items() if k != "schema_version"}
               for name in ("sensor_layout", "geometry")}
    records["q_integration"] = {"bg_sample_id": background, **synthetic.suggested_boxes(params)}
    if params.background_model == "unattenuated":
        records["q_integration"].update(bg_scale_mode="manual", bg_scale=params.subtraction_scale())
    records["velocity_calibration"] = {"kind": "poly", "poly_coeffs": [0.0, 1.0]}
    records["angle_calibration"] = {"kind": "cos2theta"}
    records["q_range"] = {"q_min": float(q_range[0]), "q_max": float(q_range[1])}
    if e_spectrum:
        records["e_spectrum"] = e_spectrum
    spice = proposal.spice
    return [spice.seed(name, **values) for name, values in records.items()
            if not (missing_only and any(not r.erased for r in spice.candidates(name, "")))]


def default_folder():
    """Where ``eqegs demo`` without a folder writes its tree: ``demo/`` in the user's cache
    folder (``~/.cache/eqegs_repo/demo``, see :func:`eqegs_repo.cooking.cache.user_cache_folder`),
    never the current folder."""
    return os.path.join(user_cache_folder(), "demo")


STAGING_PREFIX = ".demo-partial-"
"""Name start of the hidden folder in which :func:`write_tree` builds a tree
(``.demo-partial-<process id>-<random>``)."""


def _running(pid):
    """Whether a process ``pid`` runs on this machine (on Windows taken as no: ``os.kill`` there
    sends signal 0 as CTRL_C_EVENT or ends the process)."""
    if os.name == "nt":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def remove_leftovers(base_dir, account=synthetic.DEFAULT_ACCOUNT):
    """Remove what a demo stopped while writing its tree left in ``base_dir``, each with a
    warning naming it: its partial folder (``.demo-partial-*``, unless the process writing it
    still runs) and a ``truth/<account>`` folder without its tree (a demo stopped between the
    two moves of :func:`write_tree`). Returns the paths removed."""
    base = Path(base_dir)
    removed = []
    for folder in sorted(base.glob(STAGING_PREFIX + "*")) if base.is_dir() else ():
        pid = folder.name[len(STAGING_PREFIX):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and _running(int(pid)):
            continue  # another demo is writing it now
        warnings.warn(f"removing {folder}: the partial tree of a demo that was stopped while writing it",
                      UserWarning, stacklevel=2)
        shutil.rmtree(folder)
        removed.append(folder)
    truth = base / "truth" / account
    if truth.is_dir() and not synthetic.eqegs_root(base, account).exists():
        warnings.warn(f"removing {truth}: the truth of a demo tree that was never put in place (the demo was "
                      "stopped while moving it)", UserWarning, stacklevel=2)
        shutil.rmtree(truth)
        removed.append(truth)
    return removed


def _move_into_place(staged, target):
    """Rename the first folder of ``staged`` (a path under the staging folder) that ``target``
    (the same path under ``base_dir``) lacks; the folders above it exist or are made."""
    staged, target = Path(staged), Path(target)
    depth = len(target.parts) - 1
    while depth > 0 and not Path(*target.parts[:depth]).exists():
        depth -= 1
    first = Path(*target.parts[:depth + 1])
    os.rename(Path(*staged.parts[:len(staged.parts) - len(target.parts) + depth + 1]), first)


def write_tree(base_dir, preset=PRESET, seed=1, account=synthetic.DEFAULT_ACCOUNT, format="npy", compression="zstd",
               **overrides):
    """Write the demo's synthetic tree (:func:`eqegs_repo.simulate.synthetic.write_tree`) into
    ``base_dir`` whole or not at all: built in a hidden folder ``base_dir/.demo-partial-...``,
    then moved into place, ``truth/<account>`` first and the tree last, so that
    ``UserData/<account>/EQEGS`` appears only complete. Leftovers of a stopped demo are removed
    first (:func:`remove_leftovers`); an exception (Ctrl-C) removes the partial folder. Returns
    the EQEGS root. ``format`` and ``compression`` are those of the synthetic tree (``"npy"`` or
    ``"hdf5"``); ``overrides`` change SyntheticParams fields of every run (e.g.
    ``sample_transmission=0.5, background_model="unattenuated"``) or pass ``models`` (a dict
    that keeps the expected-count models for :func:`noise_free_copy`) to
    :func:`eqegs_repo.simulate.synthetic.write_tree`. Raises FileExistsError when the tree exists."""
    base = Path(base_dir)
    root = synthetic.eqegs_root(base, account)
    if root.exists():
        raise FileExistsError(f"{root} exists; the demo writes a tree only where there is none")
    remove_leftovers(base, account)
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        synthetic.write_tree(staging, account=account, preset=preset, seed=seed, format=format,
                             compression=compression, **overrides)
        _move_into_place(staging / "truth" / account, base / "truth" / account)
        _move_into_place(synthetic.eqegs_root(staging, account), root)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return root


def write_config(base_dir, account=synthetic.DEFAULT_ACCOUNT):
    """Write the tree's eqegs.yaml with the cache in ``<base_dir>/cache`` (as a path relative to
    the tree's root, so the folder can move), unless the tree already has one. Returns the
    path written, or None."""
    root = synthetic.eqegs_root(base_dir, account)
    if (root / config.FILE_NAME).exists():
        return None
    cache = os.path.relpath(Path(base_dir).resolve() / "cache", root.resolve())
    return config.write_config(str(root), {"cache_url": Path(cache).as_posix()})


def seed_tree(repo, base_dir, account=synthetic.DEFAULT_ACCOUNT, **e_spectrum):
    """Seed every proposal of the demo tree at ``base_dir`` (``repo`` over it) that has no
    ``e_spectrum`` record yet (the last one seeded) with :func:`seed_spice` and the
    ``e_spectrum`` fields given (default :data:`E_SPECTRUM`), leaving records a demo stopped
    while seeding wrote. Returns the keys of the proposals seeded."""
    seeded = []
    for key in repo.keys():
        proposal = repo[key]
        if not proposal.spice.history("e_spectrum"):
            params = synthetic.load_truth(base_dir, account, key, proposal.keys()[-1]).params
            seed_spice(proposal, params, missing_only=True, **(e_spectrum or E_SPECTRUM))
            seeded.append(key)
    return seeded


def noise_free_copy(base_dir, account=synthetic.DEFAULT_ACCOUNT, models=None, **e_spectrum):
    """The noise-free copy of the demo tree at ``base_dir``, as a Repository over
    ``<base_dir>/noise-free`` (:data:`NOISE_FREE_DIR`), written when missing: the same preset,
    seeds and parameters as the tree (read from its truth), with ``noise_free=True`` (the
    expected counts, float32; docs/synthetic.md#noise-free-copies), its own ``eqegs.yaml``
    and cache, and spice seeded as :func:`seed_tree` does. Cooking it shows what the settings
    give without counting noise: their bias. ``models``: the dict :func:`write_tree` kept the
    tree's expected-count models in (none is built again)."""
    from eqegs_repo.repository import Repository

    base = Path(base_dir)
    proposals = sorted(p.name for p in (base / "truth" / account).iterdir() if p.is_dir())
    first = synthetic.load_truth(base, account, proposals[0], synthetic.BACKGROUND_SAMPLE_ID)
    copy = base / NOISE_FREE_DIR
    root = synthetic.eqegs_root(copy, account)
    if not root.exists():
        preset = first.record["preset"]
        written, default = first.params, synthetic.preset_params(preset, 0)
        changed = {f.name: getattr(written, f.name) for f in dataclasses.fields(written)
                   if f.name != "n_frames" and getattr(written, f.name) != getattr(default, f.name)}
        changed.update(noise_free=True, dtype="float32")
        counts = [len(list((base / "truth" / account / p).glob("*.json"))) - 1 for p in proposals]
        write_tree(copy, preset=preset, seed=first.record["tree_seed"], account=account, models=models,
                   proposals=tuple(proposals), samples_per_proposal=tuple(counts), **changed)
    write_config(copy, account)
    repo = Repository(str(root))
    seed_tree(repo, copy, account, **e_spectrum)
    return repo


def truth_of_fit(ds, truth):
    """(τ, f_q) of an exponential fitted to the true ISF of the pixels the result used at the
    accepted times: what a perfect measurement of that range gives (τ varies across the range).
    The pixels are those the result's radial bins hold: bins of ``radial_bin_px`` around the
    centre it found, whose centre q lies in its ``q_min`` to ``q_max``, outside its direct-beam
    box (:meth:`~eqegs_repo.simulate.synthetic.SampleTruth.isf_of_bins`), each at its true q."""
    t = ds.t.values[ds.accepted.values]
    attrs = ds.attrs
    qp = attrs["parameters"]["q_integration"]
    isf = truth.isf_of_bins(attrs["q_min"], attrs["q_max"], t, centre_xy=(attrs["centre_x"], attrs["centre_y"]),
                            bin_px=qp["radial_bin_px"], box_halfwidth=qp["direct_exclusion_halfwidth"])
    fit = es.fit_relaxation(t, isf, np.full(t.size, 1e-3))
    return fit.tau_ns, fit.f_q


def recovered_vs_truth(repo, base_dir, account=synthetic.DEFAULT_ACCOUNT):
    """Cook every non-background sample of a synthetic tree; one row per sample with the fitted
    τ and f_q, their errors, the truth and the deviation in units of the error."""
    rows = []
    samples = [repo[p][s] for p in repo.keys() for s in repo[p].keys() if s != synthetic.BACKGROUND_SAMPLE_ID]
    with progress.bar(len(samples), "cooking", "sample") as bar, progress.quiet():
        for sample in samples:
            proposal_key, key = sample.proposal.key, sample.key
            bar.set_postfix_str(f"{proposal_key}/{key}")
            ds = sample.cooked
            bar.update()
            tau, f_q = truth_of_fit(ds, synthetic.load_truth(base_dir, account, proposal_key, key))
            rows.append({
                "proposal": proposal_key, "sample": key,
                "tau_ns": ds.tau.item(), "tau_err": ds.tau_error.item(), "tau_true": tau,
                "tau_dev_sigma": (ds.tau.item() - tau) / ds.tau_error.item(),
                "f_q": ds.f_q.item(), "f_q_err": ds.f_q_error.item(), "f_q_true": f_q,
                "f_q_dev_sigma": (ds.f_q.item() - f_q) / ds.f_q_error.item(),
                "chi2_red": ds.chi2_red.item(),
            })
    return pd.DataFrame(rows)


def with_noise_free(table, noise_free):
    """``table`` (:func:`recovered_vs_truth` of the demo tree) with the fits of its noise-free
    copy (:func:`recovered_vs_truth` of :func:`noise_free_copy`) beside: ``tau_noise_free``,
    its bias against the truth in per cent (``tau_bias_pct``) and in units of the noisy fit's
    error (``tau_bias_sigma``), and ``f_q_noise_free``, ``f_q_bias``, ``f_q_bias_sigma``. A bias
    far below 1 sigma says the settings are sound; the noisy deviation is then noise."""
    free = noise_free.set_index(["proposal", "sample"]).reindex(list(zip(table["proposal"], table["sample"])))
    out = table.copy()
    out["tau_noise_free"] = free["tau_ns"].to_numpy()
    out["tau_bias_pct"] = 100.0 * (out["tau_noise_free"] / out["tau_true"] - 1.0)
    out["tau_bias_sigma"] = (out["tau_noise_free"] - out["tau_true"]) / out["tau_err"]
    out["f_q_noise_free"] = free["f_q"].to_numpy()
    out["f_q_bias"] = out["f_q_noise_free"] - out["f_q_true"]
    out["f_q_bias_sigma"] = out["f_q_bias"] / out["f_q_err"]
    return out


TWO_SIGMA = 0.9545
"""Probability that a Gaussian error falls within 2 sigma."""
SOUND_BIAS_SIGMA = 0.5
"""Largest noise-free bias, in units of the noisy fit's error, that :func:`recovery_summary`
calls small (it moves the share within 2 sigma from 95 % to 93 % at most)."""


def recovery_summary(table):
    """The demo's verdict in lines of text: how many samples fall within 2 sigma of the truth,
    what that count should be when the errors are honest (about 95 % of them: k of n follows
    a binomial law of p = 0.9545), and, when ``table`` has the noise-free columns of
    :func:`with_noise_free`, the largest bias of the settings themselves."""
    n = len(table)
    tau_ok = int((table["tau_dev_sigma"].abs() <= 2).sum())
    f_q_ok = int((table["f_q_dev_sigma"].abs() <= 2).sum())
    lines = [f"recovered within 2 sigma: tau {tau_ok}/{n}, f_q {f_q_ok}/{n}"]
    if n:
        below = {k: math.comb(n, k) * TWO_SIGMA ** k * (1 - TWO_SIGMA) ** (n - k) for k in range(n + 1)}
        fewer = sum(p for k, p in below.items() if k < n - 1)
        lines.append(f"  (|fit - truth| <= 2 errors: honest errors put about 95 % of samples there, so about "
                     f"{TWO_SIGMA * n:.1f} of {n};\n   {n - 1} of {n} happens in {100 * below[n - 1]:.0f} % of "
                     f"honest runs, fewer in {100 * fewer:.0f} %)")
    if n and "tau_bias_sigma" in table:
        worst = max(table["tau_bias_sigma"].abs().max(), table["f_q_bias_sigma"].abs().max())
        verdict = ("far below 1 sigma, so the noisy fits' deviations are noise" if worst < SOUND_BIAS_SIGMA else
                   "not small against the errors: these settings bias the fit")
        lines.append(f"noise-free copy: tau off the truth by at most {table['tau_bias_pct'].abs().max():.2f} % "
                     f"({table['tau_bias_sigma'].abs().max():.2f} sigma), f_q by at most "
                     f"{table['f_q_bias'].abs().max():.4f} ({table['f_q_bias_sigma'].abs().max():.2f} sigma)\n"
                     f"  (the bias of the settings themselves, {verdict})")
    return lines


def app_folders_only(proposal, samples=None, steps=None):
    """Turn samples of ``proposal`` into what an app-analysed proposal whose raw sensor data
    are gone looks like (docs/reanalysis.md#from-the-apps-work): each step of ``steps`` (default
    every step) that applies to the sample is exported as the app's step folder
    (``sample.export``, existing results kept), then the raw run's files are removed. The
    marker and the drive waveform stay (``train_integrated.json`` and
    ``train_integrated/velocity.npy``, written as .npy when the raw format held it elsewhere):
    the app's E spectrum reads the waveform too. ``samples``: keys (default all, the
    background run included). Returns ``{sample key: [files removed]}``."""
    from eqegs_repo.cooking.cook import applicable_steps
    from eqegs_repo.io.run import open_run

    removed = {}
    for key in proposal.keys() if samples is None else list(samples):
        sample = proposal[key]
        for step in [s for s in applicable_steps(sample) if steps is None or s in steps]:
            sample.export(step, skip_existing=True)
        run = open_run(sample.fs, sample.path, sample.marker, sample.layout)
        velocity_file = sample.layout.velocity_path(sample.path)
        if velocity_file not in run.files and not sample.fs.exists(velocity_file):
            sample.fs.makedirs(velocity_file.rsplit("/", 1)[0], exist_ok=True)
            with sample.fs.open(velocity_file, "wb") as f:
                np.save(f, np.asarray(run.velocity.read()))
        removed[key] = [path for path in run.files if path != velocity_file and sample.fs.exists(path)]
        for path in removed[key]:
            sample.fs.rm(path)
        sample.refresh()
    return removed


# --- the report ----------------------------------------------------------------------------------
REPORT_NAME = "report"
FIGURE_DIR = "report-figures"


def _number(value):
    return f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)


def _markdown_table(frame):
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(_number(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _html_block(kind, content):
    if kind == "h2":
        return f"<h2>{html.escape(content)}</h2>"
    if kind == "p":
        return f"<p>{html.escape(content)}</p>"
    if kind == "list":
        return "<ul>" + "".join(f"<li><code>{html.escape(item)}</code></li>" for item in content) + "</ul>"
    if kind == "table":
        return content.to_html(index=False, float_format=_number, border=0)
    name, caption = content
    return (f"<figure><img src='{html.escape(name, quote=True)}' alt='{html.escape(caption, quote=True)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _markdown_block(kind, content):
    if kind == "h2":
        return f"## {content}"
    if kind == "p":
        return content
    if kind == "list":
        return "\n".join(f"* `{item}`" for item in content)
    if kind == "table":
        return _markdown_table(content)
    name, caption = content
    return f"![{caption}]({name})\n\n*{caption}*"


def _report_figures(repo, table):
    """``{file name: (caption, function() -> Figure)}``: the chain of the first sample of the
    table and the fitted τ and f_q of every sample."""
    from eqegs_repo import figures

    first = repo[table["proposal"].iloc[0]][table["sample"].iloc[0]]
    where = f"{first.proposal.key}/{first.key}"
    rec, qds, ds = (first.cook(step) for step in ("reconstruction", "q_integration", "e_spectrum_and_isf"))
    cooked = [repo[p][s].cooked for p, s in zip(table["proposal"], table["sample"])]
    return {"frame_summed_image.png": (f"{where}: frame-summed image, ROI and beam centre",
                                        lambda: figures.frame_summed_image(rec, (qds.attrs["centre_x"],
                                                                                 qds.attrs["centre_y"]))),
             "intensity_q.png": (f"{where}: intensity per pixel against q, the q range shaded",
                                 lambda: figures.intensity_profile(ds)),
             "energy_spectra.png": (f"{where}: forward and quasi-elastic spectra with their background fits",
                                    lambda: figures.energy_spectra(ds)),
             "isf.png": (f"{where}: ISF with Monte-Carlo errors, threshold and fit", lambda: figures.isf(ds)),
             "relaxation_summary.png": ("fitted tau and f_q of every sample",
                                        lambda: figures.relaxation_summary(cooked, x="sample"))}


def write_report(repo, base_dir, table, overwrite=False, draw=None):
    """Write ``<base_dir>/report.md`` and ``report.html``: what the demo did, the table of
    recovered against true τ and f_q (:func:`recovered_vs_truth`, with the noise-free columns of
    :func:`with_noise_free` when given) and its verdict (:func:`recovery_summary`), figures of the first sample and
    of all samples (PNG files in ``<base_dir>/report-figures/``; left out, with a note, when
    matplotlib is not installed) and where the tree, truth, spice, cache and results are.

    ``draw``: make figures (None: when matplotlib is installed). Existing report files are
    replaced only with ``overwrite=True``; each file is written to a temporary name and moved
    into place. Returns the path of report.md.
    """
    base = Path(base_dir)
    targets = [base / f"{REPORT_NAME}.md", base / f"{REPORT_NAME}.html"]
    draw = optional_import("matplotlib", "figures", required=False) is not None if draw is None else draw
    drawn = _report_figures(repo, table) if draw and len(table) else {}
    targets += [base / FIGURE_DIR / name for name in drawn]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise BadInput(f"demo report: {', '.join(existing)} already exist(s); pass overwrite=True to replace")
    written = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    blocks = [
        ("p", f"Written {written} by eqegs_repo's demo. It wrote (or found) a synthetic E-QEGS tree, seeded "
              "spice that matches the simulation in each proposal (sensor layout, geometry, background "
              "sample, calibrations, q range, E-spectrum settings) and cooked every sample through "
              "reconstruction, q integration and E spectrum and ISF."),
        ("h2", "Recovered against true relaxation"),
        *(("p", line) for line in recovery_summary(table)),
        ("p", "The truth is the fit, at the same times, of the simulated ISF of the pixels each result summed "
              "(its radial bins in its q range, each pixel at its true q)"
              + ("; the noise-free columns are the fits of the noise-free copy of the tree." if "tau_bias_sigma" in table
                 else ".")),
        ("table", table),
        ("h2", "Figures"),
    ]
    if drawn:
        blocks += [("img", (f"{FIGURE_DIR}/{name}", caption)) for name, (caption, _) in drawn.items()]
    else:
        blocks.append(("p", f"No figures: drawing them needs matplotlib ({install_hint('matplotlib')})."))
    proposals = [repo[key] for key in repo.keys()]
    blocks += [
        ("h2", "Where things are"),
        ("p", "The tree, the truth of the simulation, the spice records (repository, then each proposal), "
              "the result cache and this report:"),
        ("list", [str(synthetic.eqegs_root(base)), str(base / "truth"),
                  str(repo.spice.store.url), *(str(p.spice.store.url) for p in proposals), str(repo.cache_url), str(targets[0])]),
        ("p", f"Browse in Python with Repository({repo.url!r}); export a sample's results as the app's "
              "folders with sample.export(step) or eqegs cook ... --export."),
    ]
    title = "eqegs demo report"
    markdown = f"# {title}\n\n" + "\n\n".join(_markdown_block(k, c) for k, c in blocks) + "\n"
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<h1>{title}</h1>" + "".join(_html_block(k, c) for k, c in blocks) + "</body></html>\n")
    if drawn:
        (base / FIGURE_DIR).mkdir(exist_ok=True)
    for name, (_, make) in drawn.items():
        _publish(base / FIGURE_DIR / name, lambda path, make=make: make().savefig(path, format="png", dpi=80))
    _publish(targets[1], lambda path: Path(path).write_text(page, encoding="utf-8"))
    _publish(targets[0], lambda path: Path(path).write_text(markdown, encoding="utf-8"))
    return targets[0]


def _publish(target, write):
    """Run ``write(temporary path)`` next to ``target``, then move the file into place."""
    temporary = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
