"""eqegs: browse, parameterise and analyse E-QEGS data of SPring-8 BL35XU.

``URL`` is a repository URL pattern (``/data/UserData/{account}/EQEGS/{proposal}/{sample}``
with ``-f account=u0000000``) or simply the EQEGS folder (``/data/UserData/u0000000/EQEGS``),
to which ``/{proposal}/{sample}`` is appended.
"""
import argparse
import json
import os
import sys
import warnings

import pandas as pd

from eqegs_repo.cli import batch as cli_batch
from eqegs_repo.cli import spice as cli_spice
from eqegs_repo.cli.common import (
    add_repository_arguments,
    assignment,
    one_line_warning,
    open_repository,
    os_error_text,
    override_values,
    print_table,
)
from eqegs_repo.errors import BadInput, EqegsError
from eqegs_repo.repository import Repository
from spice import SpiceError


def cmd_ls(args):
    repo = open_repository(args)
    if args.proposal is None:
        print_table(repo.table())
    else:
        print_table(repo[args.proposal].table())


def cmd_info(args):
    sample = open_repository(args)[args.proposal][args.sample]
    print(json.dumps(sample.info(), indent=2, default=str))
    results = {k: v for k, v in sample.step_results().items() if v}
    print("results:", json.dumps(results) if results else "none")


def cmd_demo(args):
    from eqegs_repo.simulate import demo, synthetic

    args.dir = os.path.abspath(args.dir)
    root = synthetic.eqegs_root(args.dir)
    fresh = not root.exists()
    if fresh:
        print(f"writing a synthetic E-QEGS tree (preset {args.preset}, seed {args.seed}) to {args.dir} ...")
        synthetic.write_tree(args.dir, preset=args.preset, seed=args.seed)
    else:
        print(f"demo tree already at {root}; showing it (remove the folder to write a new one)")
    repo = Repository(f"{root}/{{proposal}}/{{sample}}", cache_url=os.path.join(args.dir, "cache"))
    print(f"\nrepository {repo.url}")
    print_table(repo.table())
    for key in repo.all():
        print(f"\nproposal {key}")
        print_table(repo[key].table()[["key", "handle", "frames", "sensors", "sensor_shape", "dtype", "problem"]])
    print(f"\nground truth (tau, f_q, beam centre ...) in {args.dir}/truth/")
    print(f"browse it: eqegs ls {root} [PROPOSAL]; in Python: Repository({repo.url!r})")
    for key in repo.keys():
        proposal = repo[key]
        if not proposal.spice.history("q_range"):
            first = proposal.keys()[-1]
            params = synthetic.load_truth(args.dir, synthetic.DEFAULT_ACCOUNT, key, first).params
            demo.seed_spice(proposal, params, bg_n_points=8, isf_error_threshold=0.1, n_mc=200)
    print("\ncooking every sample (reconstruction -> q integration -> E spectrum and ISF) ...")
    table = demo.recovered_vs_truth(repo, args.dir)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(table.to_string(index=False))
    print(f"recovered within 2 sigma: tau {int((table.tau_dev_sigma.abs() <= 2).sum())}/{len(table)}, "
          f"f_q {int((table.f_q_dev_sigma.abs() <= 2).sum())}/{len(table)}")
    report = demo.write_report(repo, args.dir, table, overwrite=True)
    print(f"report: {report} (and report.html)")
    print(f"cook one yourself: eqegs cook {root} {repo.keys()[0]} S001")


def cmd_cook(args):
    sample = open_repository(args)[args.proposal][args.sample]
    overrides = override_values(args.set)
    if args.overwrite and not args.export:
        raise BadInput("--overwrite only applies with --export")
    try:
        if args.export:
            exported = sample.export(args.step, overwrite=args.overwrite, use_cache=not args.no_cache,
                                     **overrides)
            ds = exported.dataset
        else:
            ds = sample.cook(args.step, use_cache=not args.no_cache, **overrides)
    except SpiceError as exc:
        raise BadInput(str(exc)) from None
    print(ds)
    if args.export:
        print(f"\nexported {exported.folder}\nand {exported.zip}")
    if "tau" in ds:
        print(f"\ntau = {ds.tau.item():.2f} +- {ds.tau_error.item():.2f} ns, f_q = {ds.f_q.item():.4f} +- "
              f"{ds.f_q_error.item():.4f}, beta = {ds.beta.item():.3f}, chi2_red = {ds.chi2_red.item():.2f}")


def build_parser():
    parser = argparse.ArgumentParser(prog="eqegs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ls", help="list proposals, or the samples of one proposal, as a table")
    add_repository_arguments(p)
    p.add_argument("proposal", nargs="?", help="proposal key (omit to list proposals)")
    p.set_defaults(run=cmd_ls)

    p = sub.add_parser("info", help="show a sample's marker and raw files")
    add_repository_arguments(p)
    p.add_argument("proposal")
    p.add_argument("sample")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("cook", help="run the analysis chain of one sample and print the result")
    add_repository_arguments(p)
    p.add_argument("proposal")
    p.add_argument("sample")
    p.add_argument("--step", default="e_spectrum_and_isf",
                   choices=["reconstruction", "q_integration", "e_spectrum_and_isf"])
    p.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="one-off parameter override (JSON value), e.g. --set q_min=10.1 (repeatable)")
    p.add_argument("--no-cache", action="store_true", help="compute without the result cache")
    p.add_argument("--cache-url", default=None, help="where cooked results are cached")
    p.add_argument("--export", action="store_true",
                   help="also write the app's step folder and download zip (docs/outputs.md)")
    p.add_argument("--overwrite", action="store_true", help="with --export: replace an existing result")
    p.set_defaults(run=cmd_cook)

    p = sub.add_parser("demo", help="write a synthetic demo tree (no data needed), show it and cook it")
    p.add_argument("dir", nargs="?", default="eqegs-demo", help="where to write it (default ./eqegs-demo)")
    p.add_argument("--preset", default="tiny", help="size preset: tiny, small, medium, full")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(run=cmd_demo)

    cli_spice.register(sub)
    cli_batch.register(sub)
    return parser


def main(argv=None):
    """Entry point of ``eqegs``; returns the exit status (0 ok, 1 user error)."""
    args = build_parser().parse_args(argv)
    shown = warnings.showwarning
    warnings.showwarning = one_line_warning  # a skipped folder or file: one line each
    try:
        args.run(args)
    except (EqegsError, SpiceError) as exc:
        print(f"eqegs: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")
    except OSError as exc:  # e.g. a write into a read-only tree: one line, no traceback
        print(f"eqegs: error: {os_error_text(exc)}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
    return 0


if __name__ == "__main__":
    sys.exit(main())
