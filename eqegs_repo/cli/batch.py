"""``eqegs reanalyze`` and ``eqegs watch``: cook many samples, or samples as they arrive."""
import sys
import warnings

from eqegs_repo.cli.common import (
    add_repository_arguments,
    assignment,
    choice_list,
    condition_list,
    open_repository,
    override_values,
    print_table,
    word_list,
)
from eqegs_repo.errors import BadInput, PhysicsWarning
from eqegs_repo.measured import with_error
from eqegs_repo.scheduler import SCHEDULER_TIMEOUT
from eqegs_repo.step_table import names as step_names

SHOWN = ("proposal", "sample", "status", "checks", "tau_ns", "f_q", "chi2_red", "duration_s")
"""The columns ``eqegs reanalyze`` prints (the physics checks that failed, tau and f_q with their
errors), followed by each failure's message in full (``--csv`` writes every one of batch.COLUMNS)."""
DEFAULT_STEPS = ["e_spectrum_and_isf"]


def shown_table(table):
    """The columns of :data:`SHOWN` of a ``batch.reanalyze`` table, ``tau_ns`` and ``f_q`` as
    ``value ± error`` text (:func:`eqegs_repo.measured.with_error`; empty when not fitted), and
    ``temperature_K`` when a sample has one."""
    shown = table[list(SHOWN)].copy()
    for name, error in (("tau_ns", "tau_error_ns"), ("f_q", "f_q_error")):
        shown[name] = ["" if value is None or value != value else with_error(value, err)
                       for value, err in zip(table[name], table[error])]
    shown["checks"] = ["" if text is None or text != text else text for text in table["checks"]]
    shown["chi2_red"] = table["chi2_red"].round(2)
    if "temperature_K" in table and table["temperature_K"].notna().any():  # the samples' conditions
        shown.insert(3, "temperature_K", table["temperature_K"])
    return shown


def _selection_arguments(parser):
    parser.add_argument("--proposals", action="extend", type=word_list, metavar="P[,P...]",
                        help="proposal keys or patterns, e.g. '2025A*' (repeatable, or comma-separated)")
    parser.add_argument("--samples", action="extend", type=word_list, metavar="S[,S...]",
                        help="sample keys or patterns, e.g. 'S00[1-3]' (repeatable, or comma-separated)")
    parser.add_argument("--steps", action="extend", type=choice_list(list(step_names())), metavar="STEP[,STEP...]",
                        help="steps to cook; the chain runs up to the last (default e_spectrum_and_isf; "
                             f"one of {', '.join(step_names())}; repeatable, or comma-separated)")
    parser.add_argument("--set", dest="overrides", type=assignment, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="one-off parameter value (JSON) for every sample, e.g. q_min=10 (repeatable)")
    parser.add_argument("--export", action="store_true", help="also write the app's step folders")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="give a sample up as 'timed out' after this many seconds")


def cmd_reanalyze(args):
    from eqegs_repo import batch

    repo = open_repository(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PhysicsWarning)  # the checks column says which samples are flagged
        table = batch.reanalyze(
            repo, proposals=args.proposals, samples=args.samples, where=batch.parse_where(args.where),
            steps=args.steps or DEFAULT_STEPS, overrides=override_values(args.overrides), export=args.export,
            scheduler=args.scheduler, scheduler_timeout=args.scheduler_timeout, workers=args.workers,
            progress=False if args.no_progress else None, dashboard=args.dashboard_address or args.dashboard,
            timeout=args.timeout, nexus=args.nexus)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print_table(shown_table(table))
    for row in table[table.status.isin(["failed", "timed out"])].itertuples():
        print(f"{row.status} {row.proposal}/{row.sample}: {row.error}")
    if args.temperature_law:
        from eqegs_repo.temperature_fits import fit_temperature_law, fit_text

        print(fit_text(fit_temperature_law(table, args.temperature_law)))
    failed = int(table.status.isin(["failed", "timed out"]).sum())
    flagged = int(table.checks.fillna("").astype(bool).sum())
    print(f"{len(table)} samples: " + ", ".join(
        f"{n} {status}" for status, n in table.status.value_counts().items())
        + (f"; {flagged} flagged by the physics checks (the checks column)" if flagged else ""), file=sys.stderr)
    if failed:
        raise BadInput(f"{failed} sample(s) failed or timed out (see the error column)")


def cmd_watch(args):
    from eqegs_repo import batch
    from eqegs_repo.params.effective import check_overrides
    from eqegs_repo.history import check_target_error
    from eqegs_repo.file_events import how_changes_are_found
    from eqegs_repo.io.layout import is_local
    from eqegs_repo.watch import check_retries, watch

    batch.check_watch_arguments(args.interval, args.timeout)
    check_retries(args.retries)
    check_target_error(args.target_error)
    repo = open_repository(args, empty_ok=True)  # samples may arrive later
    check_overrides(override_values(args.overrides))
    live = live_page(args, repo)
    how = how_changes_are_found(repo.root, local=is_local(repo.fs), mode=args.changes)
    print(f"watching {repo.root} every {args.interval} s (changes found by {how}); growing samples are "
          "cooked again; Ctrl-C stops", file=sys.stderr)
    if live is not None:
        print(f"live page: {live.path} (reloads every {live.refresh_s:g} s)", file=sys.stderr)

    def show(row):
        fit = (f"tau = {with_error(row['tau_ns'], row['tau_error_ns'], 'ns')}, "
               f"f_q = {with_error(row['f_q'], row['f_q_error'])}") if row["tau_ns"] is not None else ""
        print(f"{row['proposal']}/{row['sample']}: {row['status']} {row['error'] or fit} "
              f"({row['duration_s']} s)", flush=True)

    rows = watch(repo, proposals=args.proposals, samples=args.samples, steps=args.steps or DEFAULT_STEPS,
                 overrides=override_values(args.overrides), export=args.export, interval=args.interval,
                 existing=args.existing, retries=args.retries, on_result=show, timeout=args.timeout,
                 on_update=each(show_projection(args.target_error), live), target_error=args.target_error,
                 history_dir=args.history_dir, changes=args.changes)
    print(f"stopped; {len(rows)} cook(s)", file=sys.stderr)


def each(*callbacks):
    """One ``on_update`` of :func:`eqegs_repo.watch.watch` that calls every callback given (None
    left out) in turn: the projection printed, then the live page rewritten. The callbacks are
    its ``callbacks``."""
    callbacks = [callback for callback in callbacks if callback is not None]

    def call(history, sample, row):
        for callback in callbacks:
            callback(history, sample, row)
    call.callbacks = callbacks
    return call


def live_page(args, repo):
    """The :class:`~eqegs_repo.live_page.LivePage` of ``eqegs watch --live-page PATH`` (checked
    before the first poll), or None without the option."""
    if args.live_page is None:
        return None
    from eqegs_repo.live_page import LivePage

    return LivePage(args.live_page, title=f"eqegs watch {repo.root}", overrides=override_values(args.overrides))


def show_projection(target_error):
    """An ``on_update`` of :func:`eqegs_repo.watch.watch` that prints, after each history row,
    the sample's exposure and the stop rule (:func:`eqegs_repo.history.projected_exposure`)."""
    from eqegs_repo.history import projected_exposure

    def show(history, sample, row):
        rows = history[(history.proposal == row["proposal"]) & (history["sample"] == row["sample"])]
        projection = projected_exposure(rows, target_error)
        trains = "" if row["n_trains"] is None else f"{row['n_trains']} trains, "
        exposure = "" if row["exposure_s"] is None else f"exposure {row['exposure_s']:.4g} s"
        print(f"  {row['proposal']}/{row['sample']}: {trains}{exposure}"
              + ("" if projection is None else f"; {projection}"), flush=True)
    return show


def register(subparsers):
    """Add ``reanalyze`` and ``watch`` to the ``eqegs`` sub-commands."""
    p = subparsers.add_parser("reanalyze", help="cook many samples on Dask and print one table")
    add_repository_arguments(p)
    _selection_arguments(p)
    p.add_argument("--where", action="extend", type=condition_list, metavar="TYPE.FIELD=VALUE",
                   help="only samples whose resolved spice has this value (YAML), e.g. "
                        "calibration.velocity_number=1 (repeatable, or comma-separated)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (tcp://host:8786) "
                                                          "instead of a local cluster")
    p.add_argument("--scheduler-timeout", type=float, default=SCHEDULER_TIMEOUT, metavar="SECONDS",
                   help=f"give up when the scheduler does not answer within this time "
                        f"(default {SCHEDULER_TIMEOUT:g})")
    p.add_argument("--workers", type=int, default=None,
                   help="local processes (default: one per core; at most 4 per core)")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--nexus", metavar="FILE", help="also write the table as a NeXus/HDF5 file (.nxs; an "
                                                   "existing file is refused)")
    p.add_argument("--temperature-law", choices=("arrhenius", "vft"), default=None,
                   help="also fit this law to tau against the samples' temperature_K (conditions spice) "
                        "and print its parameters with errors")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (there is none "
                                                              "when the output is not a terminal)")
    p.add_argument("--dashboard", action="store_true",
                   help="start the local cluster's Dask dashboard on a free port and print its link")
    p.add_argument("--dashboard-address", metavar="ADDRESS", default=None,
                   help="the same on ADDRESS, such as :8787")
    p.set_defaults(run=cmd_reanalyze)

    p = subparsers.add_parser("watch", help="cook samples as they arrive, once their files have settled")
    add_repository_arguments(p)
    _selection_arguments(p)
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5, at least 0.05)")
    p.add_argument("--existing", action="store_true",
                   help="also report the samples already there that are cooked (answered from the cache); "
                        "those not cooked yet are cooked without it")
    p.add_argument("--retries", type=int, default=2,
                   help="further tries of a failing sample whose files do not change (default 2)")
    p.add_argument("--live-page", metavar="PATH", default=None,
                   help="also keep an HTML page at PATH with each sample's latest results and figures, "
                        "rewritten after each cook and reloading itself every 5 s (open it in a browser)")
    p.add_argument("--target-error", type=float, default=0.05, metavar="REL",
                   help="relative error of tau to reach: after each cook the exposure needed is projected "
                        "(errors scale as 1/sqrt(exposure); default 0.05)")
    p.add_argument("--changes", choices=("auto", "events", "poll"), default="auto",
                   help="how changed files are found: file events where the filesystem gives them, else "
                        "polling (auto, the default); events only; polling only")
    p.add_argument("--history-dir", metavar="FOLDER", default=None,
                   help="where each sample's results history (CSV) is written (default: history/ in the result cache)")
    p.set_defaults(run=cmd_watch)
