"""eqegs: browse, parameterise and analyse E-QEGS data of SPring-8 BL35XU.

``URL`` is a repository URL pattern (``/data/UserData/{account}/EQEGS/{proposal}/{sample}``
with ``-f account=u0000000``) or simply the EQEGS folder (``/data/UserData/u0000000/EQEGS``),
to which ``/{proposal}/{sample}`` is appended.

This module imports light modules only, so that ``eqegs --help`` answers at once; each command
imports what it needs when it runs.
"""
import argparse
import datetime
import json
import os
import sys
import time
import warnings

from eqegs_repo import __version__
from eqegs_repo.cli import batch as cli_batch
from eqegs_repo.cli import q_resolved as cli_q_resolved
from eqegs_repo.cli import spice as cli_spice
from eqegs_repo.cli.common import (
    Parser,
    add_repository_arguments,
    assignment,
    one_line_warning,
    open_repository,
    os_error_text,
    override_values,
    print_table,
    say_error,
    visible_output,
)
from eqegs_repo.errors import AppReconstructionWarning, BadInput, EqegsError, SkippedWarning
from eqegs_repo.measured import with_error
from eqegs_repo.step_table import names as step_names

EPILOG = """\
examples:
  eqegs demo /tmp/eqegs-demo              a synthetic tree, cooked and compared with its truth
  eqegs ls /tmp/eqegs-demo/UserData/u0000000/EQEGS           the proposals of a tree
  eqegs ls URL 2025A1234                  the samples of a proposal and what is cooked
  eqegs cook URL 2025A1234 S001 --set q_min=10.5             tau and f_q with their errors
  eqegs spice show URL 2025A1234 S001     a sample's parameters and where each comes from
  eqegs inspect /data/.../2025A1234/S001  why a sample folder opens or not
  eqegs reanalyze URL --samples 'S00[1-3]' --csv table.csv   many samples, one table
  eqegs COMMAND --help                    the arguments of a command

URL: the EQEGS folder (/data/UserData/u0000000/EQEGS) or a pattern such as
/data/UserData/{account}/EQEGS/{proposal}/{sample} with -f account=u0000000.

documentation: the docs/ folder of the eqegs_repo project, Markdown pages that mkdocs builds
into a site (mkdocs.yml); start with docs/getting-started.md.
"""


def cmd_ls(args):
    repo = open_repository(args)
    if args.proposal is None:
        if not repo.keys():
            print(f"(no proposals yet in {repo.root}: no folder holding {repo.layout.marker} within "
                  f"{len(repo.pattern.middle) + 5} levels)")
        else:
            print_table(repo.table())
    else:
        table = repo[args.proposal].table()
        print(repr(table))
        for key, problem in zip(table["key"], table.get("problem", ())):
            if isinstance(problem, str) and problem:  # the table cuts long cells: each in full
                print(f"problem {key}: {problem}")


def cmd_info(args):
    sample = open_repository(args)[args.proposal][args.sample]
    results = {k: v for k, v in sample.step_results().items() if v}
    if args.json:
        print(json.dumps({**sample.info().to_dict(), "results": results}, indent=2, default=str))
        return
    print(repr(sample.info()))
    print("  results            " + (", ".join(f"{k}: {', '.join(v)}" for k, v in results.items()) or "none"))


def cmd_inspect(args):
    """Print the report of :func:`eqegs_repo.io.inspection.inspect`; exit status 0 when the
    folder is readable, 1 when it is not."""
    from eqegs_repo.io.inspection import inspect

    report = inspect(args.path)
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else report)
    return 0 if report.readable else 1


def _recovered_view(table):
    """The text form of ``demo.recovered_vs_truth``: fitted tau and f_q as ``value ± error``
    beside the truth and the deviation in units of the error."""
    import pandas as pd

    return pd.DataFrame({
        "proposal": table.proposal, "sample": table["sample"],
        "tau_ns": [with_error(v, e) for v, e in zip(table.tau_ns, table.tau_err)],
        "tau_true": table.tau_true.round(2), "tau_dev_sigma": table.tau_dev_sigma.round(2),
        "f_q": [with_error(v, e) for v, e in zip(table.f_q, table.f_q_err)],
        "f_q_true": table.f_q_true.round(3), "f_q_dev_sigma": table.f_q_dev_sigma.round(2),
        "chi2_red": table.chi2_red.round(2)})


def _noise_free_view(table):
    """The noise-free columns of ``demo.with_noise_free``: the fits of the noise-free copy, their
    bias against the truth in per cent (f_q: absolute) and in units of the noisy fit's error."""
    import pandas as pd

    return pd.DataFrame({
        "proposal": table.proposal, "sample": table["sample"],
        "tau_noise_free": table.tau_noise_free.round(2), "tau_true": table.tau_true.round(2),
        "tau_bias_pct": table.tau_bias_pct.round(2), "tau_bias_sigma": table.tau_bias_sigma.round(2),
        "f_q_noise_free": table.f_q_noise_free.round(4), "f_q_true": table.f_q_true.round(4),
        "f_q_bias_sigma": table.f_q_bias_sigma.round(2)})


def cmd_demo(args):
    from eqegs_repo.cooking import progress
    from eqegs_repo.repository import Repository
    from eqegs_repo.simulate import demo, synthetic

    if args.dir is None:
        args.dir = demo.default_folder()
        print(f"no folder given: the demo goes to {args.dir} (eqegs demo DIR puts it elsewhere)")
    args.dir = os.path.abspath(args.dir)
    root = synthetic.eqegs_root(args.dir)
    demo.remove_leftovers(args.dir)  # of a demo stopped while writing its tree, named in a warning
    models = {}  # the expected counts of each run, built once for the tree and its noise-free copy
    if not root.exists():
        how = f"{args.format}" + (f", {args.compression}" if args.format == "hdf5" else "")
        cell = ("" if args.sample_transmission == 1.0 else
                f", sample transmission {args.sample_transmission:g}, background {args.background_model}")
        print(f"writing a synthetic E-QEGS tree (preset {args.preset}, seed {args.seed}, {how}{cell}) to {args.dir} ...")
        demo.write_tree(args.dir, preset=args.preset, seed=args.seed, format=args.format,
                        compression=args.compression, sample_transmission=args.sample_transmission,
                        background_model=args.background_model, models=models)
    else:
        print(f"demo tree already at {root}\n  showing it (remove the folder to write a new one)")
    written = demo.write_config(args.dir)
    repo = Repository(str(root))   # the EQEGS folder: {proposal}/{sample} under it
    if written:
        print(f"wrote {written}\n  cache_url = {repo.cache_url} (Python and every eqegs command share it)")
    print(f"\nrepository {repo.url}")
    print_table(repo.table())
    demo.seed_tree(repo, args.dir)  # the proposals not seeded yet (or seeded in part by a demo stopped then)
    if args.app_folders:
        print("\nexporting the app's step folders, then removing the raw sensor files "
              "(reconstruction.npy becomes the input) ...")
        with progress.quiet():
            for key in repo.keys():
                removed = demo.app_folders_only(repo[key])
                print(f"  {key}: {sum(map(len, removed.values()))} raw files removed from {len(removed)} samples")
    print("\ncooking every sample (reconstruction -> q integration -> E spectrum and ISF) ...")
    with warnings.catch_warnings():
        if args.app_folders:  # asked for: the table's input column says it, not a warning per sample
            warnings.simplefilter("ignore", AppReconstructionWarning)
        table = demo.recovered_vs_truth(repo, args.dir)
    print_table(_recovered_view(table))
    print(f"\nthe same samples without counting noise, cooked with the same settings ...\n"
          f"  (the noise-free copy: {os.path.join(args.dir, demo.NOISE_FREE_DIR)})")
    with progress.quiet():
        copy = demo.noise_free_copy(args.dir, models=models)
        models.clear()
        table = demo.with_noise_free(table, demo.recovered_vs_truth(copy, os.path.join(args.dir, demo.NOISE_FREE_DIR)))
    print_table(_noise_free_view(table))
    print("\n".join(demo.recovery_summary(table)))
    for key in repo.keys():
        print(f"\nproposal {key}")
        print(repr(repo[key].refresh().table()))
    if args.live:
        _play_live(repo, args)
        return
    report = demo.write_report(repo, args.dir, table, overwrite=True)
    print(f"\nground truth (tau, f_q, beam centre ...): {args.dir}/truth/\nreport: {report} (and report.html)")
    first = repo.keys()[0]
    print(f"next: eqegs ls {root} {first}        # the samples, cooked\n"
          f"      eqegs cook {root} {first} S001\n"
          f"      in Python: Repository({str(root)!r})")


def _play_live(repo, args):
    """``eqegs demo --live``: :func:`eqegs_repo.simulate.measurement.play` with each row printed."""
    from eqegs_repo.cli.batch import show_projection
    from eqegs_repo.history import check_target_error
    from eqegs_repo.simulate import measurement

    check_target_error(args.target_error)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    history_dir = os.path.join(args.dir, "live", stamp)
    projection = show_projection(args.target_error)

    def show(history, sample, row):
        fit = "not fitted" if row["tau_ns"] is None else (
            f"tau = {with_error(row['tau_ns'], row['tau_err_ns'], 'ns')}, f_q = {with_error(row['f_q'], row['f_q_err'])}")
        print(f"{row['proposal']}/{row['sample']} ({row['status']}): {fit}", flush=True)
        projection(history, sample, row)

    print(f"\nplaying a measurement: samples grow through {', '.join(map(str, measurement.TRAINS))} trains "
          f"while watched (polling); history in {history_dir}")
    history = measurement.play(repo, args.dir, target_error=args.target_error, history_dir=history_dir,
                               on_update=show)
    print(f"{0 if history is None else len(history)} history rows; read them with "
          f"eqegs_repo.watch.read_history(repo, history_dir={history_dir!r})")


def _summary(sample, ds, step):
    """A few lines about a cooked dataset (``eqegs cook`` without -v)."""
    where = f"{sample.proposal.key}/{sample.key} {step}"
    if step == "reconstruction":
        x0, y0, x1, y1 = ds.attrs["roi"]
        return (f"{where}: image {ds.sizes.get('y', '?')} x {ds.sizes.get('x', '?')} px from "
                f"{ds.sizes.get('frame', '?')} frames; ROI x {x0}..{x1}, y {y0}..{y1} px")
    if step == "q_integration":
        background = ds.attrs.get("background")
        bg = f"; background {background['sample']} x {background['k']:.4g}" if background else "; no background"
        return (f"{where}: beam centre ({ds.attrs['centre_x']:.2f}, {ds.attrs['centre_y']:.2f}) px; "
                f"{ds.sizes['q']} q bins, {float(ds.q[0]):.3g}..{float(ds.q[-1]):.3g} nm^-1{bg}")
    if step != "e_spectrum_and_isf":  # a step added to the table
        return f"{where}: " + ", ".join(f"{name} {dict(ds[name].sizes)}" for name in ds.data_vars)
    beta_error = float(ds["beta_error"]) if "beta_error" in ds else 0.0
    beta = f", beta = {with_error(ds.beta.item(), beta_error)}" if beta_error > 0 else ""  # else fixed
    return (f"{where} (q {ds.attrs['q_min']:g}..{ds.attrs['q_max']:g} nm^-1 requested; weighted q "
            f"{ds.attrs['q_weighted']:.3f}, pixels {ds.attrs['q_pixel_min']:.3f}..{ds.attrs['q_pixel_max']:.3f} nm^-1):\n"
            f"  tau = {with_error(ds.tau.item(), ds.tau_error.item(), 'ns')}, "
            f"f_q = {with_error(ds.f_q.item(), ds.f_q_error.item())}{beta}, chi2_red = {ds.chi2_red.item():.2f}"
            + _checks_summary(ds))


def _checks_summary(ds):
    """The physics checks of an E-spectrum dataset: one line when all passed, else one line per
    failed check with its message (the command prints these instead of the PhysicsWarnings)."""
    checks = ds.attrs.get("physics_checks")
    if checks is None:  # cooked before the checks existed
        return ""
    failed = [c for c in checks if c["failed"]]
    if not failed:
        return f"\n  physics checks: all {len(checks)} passed"
    return "".join(f"\n  physics check flagged: {c['name']}: {c['message']}" for c in failed)


def cmd_cook(args):
    from eqegs_repo.errors import PhysicsWarning, ResultExists
    from eqegs_repo.params.effective import check_overrides
    from spice import SpiceError

    sample = open_repository(args)[args.proposal][args.sample]
    overrides = override_values(args.set)
    check_overrides(overrides)  # names and values, before any work
    if (args.skip_existing and not args.export) or (args.overwrite and not (args.export or args.nexus)):
        raise BadInput("--overwrite and --skip-existing only apply with --export (--overwrite also with --nexus)")
    if args.nexus:
        _check_nexus(args)
    if args.overwrite and args.skip_existing:
        raise BadInput("--overwrite and --skip-existing contradict each other; choose one")
    use_cache = not args.no_cache and sample.repository.cache is not None
    was = sample.cache_status(**overrides).get(args.step) if use_cache else ""
    started = time.perf_counter()
    try:
        exported = None
        if args.export:
            exported = sample.export(args.step, overwrite=args.overwrite, skip_existing=args.skip_existing,
                                     use_cache=not args.no_cache, **overrides)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PhysicsWarning)  # the summary lists the failed checks
            ds = exported.dataset if exported is not None and not exported.skipped else sample.cook(
                args.step, use_cache=not args.no_cache, **overrides)
    except ResultExists as exc:
        raise BadInput(f"{' and '.join(exc.paths)} already exist(s); add --overwrite to replace "
                       "or --skip-existing to leave it") from None
    except SpiceError as exc:
        raise BadInput(str(exc)) from None
    if args.verbose:
        print(ds, end="\n\n")
    print(_summary(sample, ds, args.step))
    if use_cache:
        folder = sample.repository.cache.folder(sample.path, sample.proposal.key, sample.key, args.step)
        how = "from the cache" if was == "fresh" else f"cooked in {time.perf_counter() - started:.1f} s"
        print(f"  {how}: {folder}/{ds.attrs['fingerprint']}.npz")
    else:
        print(f"  cooked in {time.perf_counter() - started:.1f} s (no cache)")
    if args.export:
        if exported.skipped:
            print(f"  export: {exported.folder} exists, left alone (--skip-existing)")
        else:
            print(f"  exported {exported.folder}\n       and {exported.zip}")
        for note in exported.notes:
            print(f"  note: {note}")
    if args.nexus:
        path = sample.export_nexus(args.nexus, overwrite=args.overwrite, use_cache=not args.no_cache, **overrides)
        print(f"  NeXus file {path}")
    if not args.verbose:
        print("(-v shows the whole dataset)")


def _check_nexus(args):
    """``--nexus PATH``: only with the E-spectrum step, a local path, not an existing file
    unless ``--overwrite`` (checked before cooking)."""
    from eqegs_repo.io.nexus import check_writable

    if args.step != "e_spectrum_and_isf":
        raise BadInput(f"--nexus writes I(q), the ISF and its fit: it needs --step e_spectrum_and_isf, "
                       f"found --step {args.step}")
    check_writable(args.nexus, args.overwrite)


def _sample_arguments(parser):
    parser.add_argument("proposal", metavar="PROPOSAL", help="proposal key (a folder name, e.g. 2025A1234)")
    parser.add_argument("sample", metavar="SAMPLE", help="sample key (a folder name, e.g. S001)")


def build_parser():
    """The ``eqegs`` argument parser (from light modules only: see the module's docstring)."""
    parser = Parser(prog="eqegs", description=__doc__.splitlines()[0], epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", help="print the version and exit",
                        version=f"eqegs {__version__} (eqegs_repo, Python {sys.version.split()[0]})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands", help="one of these; eqegs COMMAND --help for its arguments")

    p = sub.add_parser("ls", help="list proposals, or the samples of one proposal, as a table")
    add_repository_arguments(p)
    p.add_argument("proposal", metavar="PROPOSAL", nargs="?", help="proposal key (omit to list proposals)")
    p.set_defaults(run=cmd_ls)

    p = sub.add_parser("info", help="show a sample's marker and raw files")
    add_repository_arguments(p)
    _sample_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON (for programs)")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("inspect", help="say why a sample folder opens or not: files, formats tried, "
                                       "what is missing (exit status 1 when it does not open)")
    p.add_argument("path", metavar="PATH", help="a sample folder (a path or fsspec URL)")
    p.add_argument("--json", action="store_true", help="print JSON (for programs)")
    p.set_defaults(run=cmd_inspect)

    p = sub.add_parser("cook", help="run the analysis chain of one sample and print the result")
    add_repository_arguments(p)
    _sample_arguments(p)
    p.add_argument("--step", default="e_spectrum_and_isf", choices=list(step_names()),
                   help="the last step to run; the steps before it run (or come from the cache) first "
                        "(default: e_spectrum_and_isf)")
    p.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="one-off parameter override (JSON value), e.g. --set q_min=10.1 (repeatable)")
    p.add_argument("--no-cache", action="store_true", help="compute without the result cache")
    p.add_argument("--export", action="store_true",
                   help="also write the app's step folder and download zip (docs/outputs.md)")
    p.add_argument("--nexus", metavar="FILE", default=None,
                   help="also write I(q), the ISF, its fit and the provenance as one NeXus/HDF5 file "
                        "(docs/outputs.md#nexus-files)")
    p.add_argument("--overwrite", action="store_true",
                   help="with --export or --nexus: replace an existing result")
    p.add_argument("--skip-existing", action="store_true", help="with --export: leave an existing result")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the whole dataset")
    p.set_defaults(run=cmd_cook)

    p = sub.add_parser("demo", help="write a synthetic demo tree (no data needed), show it and cook it")
    p.add_argument("dir", metavar="DIR", nargs="?", default=None,
                   help="where to write it (default: demo/ in the user's cache, ~/.cache/eqegs_repo/demo)")
    p.add_argument("--preset", default="demo",
                   help="size preset: demo (the default: a small detector on a drive where the default settings "
                        "are unbiased), tiny, small, medium, full")
    p.add_argument("--sample-transmission", type=float, default=1.0, metavar="T",
                   help="transmission of the simulated samples, in (0, 1] (default 1)")
    p.add_argument("--background-model", default="cell_attenuated",
                   help="cell_attenuated (default: the cell and air scattering pass the sample, as in a sample cell; "
                        "the background scale forward_ratio is right) or unattenuated (it does not; the demo seeds "
                        "bg_scale_mode manual with the background run's scale)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the random numbers of the synthetic counts (default 1; the same seed "
                        "writes the same tree)")
    p.add_argument("--app-folders", action="store_true",
                   help="keep only the app's step folders (export every step, then remove the raw sensor "
                        "files) and cook from the app's reconstruction.npy, as for an app-analysed proposal")
    p.add_argument("--format", default="npy",
                   help="raw-data format of the runs: npy (one .npy file per sensor, the default) or hdf5 "
                        "(one compressed train_integrated.h5 per sample; needs the hdf5 extra)")
    p.add_argument("--compression", default="zstd",
                   help="with --format hdf5: compression of the counts, zstd (default), lz4, bitshuffle "
                        "(bitshuffle + LZ4), gzip or none")
    p.add_argument("--live", action="store_true",
                   help="then play a measurement: grow two samples three times while watching them, printing "
                        "tau and the exposure needed for --target-error after each growth")
    p.add_argument("--target-error", type=float, default=0.05, metavar="REL",
                   help="with --live: relative error of tau to reach (default 0.05)")
    p.set_defaults(run=cmd_demo)

    cli_spice.register(sub)
    cli_batch.register(sub)
    cli_q_resolved.register(sub)
    return parser


def main(argv=None):
    """Entry point of ``eqegs``; returns the exit status: 0 ok, 1 user error (or ``eqegs
    inspect`` of a folder that does not open), 2 a usage error (argparse) or a selection that
    matches nothing."""
    args = build_parser().parse_args(argv)
    from spice import SpiceError  # after parsing: --help and usage errors need no heavy module

    shown, out = warnings.showwarning, sys.stdout
    warnings.showwarning = one_line_warning  # a skipped folder or file: one line each
    sys.stdout = visible_output(out)
    status = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedWarning)  # the commands print these as notes
            status = args.run(args) or 0  # a command returns a status of its own (inspect) or None
    except (EqegsError, SpiceError) as exc:
        say_error(exc)
        return getattr(exc, "exit_status", 1)
    except BrokenPipeError:  # output piped into `head` and the like
        out = open(os.devnull, "w")
    except OSError as exc:  # e.g. a write into a read-only tree: one line, no traceback
        say_error(os_error_text(exc))
        return 1
    finally:
        warnings.showwarning = shown
        sys.stdout = out
    return status


if __name__ == "__main__":
    sys.exit(main())
