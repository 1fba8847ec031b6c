"""eqegs: browse, parameterise and analyse E-QEGS data of SPring-8 BL35XU.

``URL`` is a repository URL pattern (``/data/UserData/{account}/EQEGS/{proposal}/{sample}``
with ``-f account=u0000000``) or simply the EQEGS folder (``/data/UserData/u0000000/EQEGS``),
to which ``/{proposal}/{sample}`` is appended.
"""
import argparse
import json
import os
import sys

import pandas as pd

from . import cli_spice
from .errors import EqegsError
from .repository import Repository


def _field(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def add_repository_arguments(parser):
    """The arguments every repository command takes: URL, -f NAME=VALUE, --spice-url."""
    parser.add_argument("url", metavar="URL", help="repository URL pattern or EQEGS folder")
    parser.add_argument("-f", "--field", type=_field, action="append", default=[],
                        metavar="NAME=VALUE", help="fill a {NAME} field of the URL (repeatable)")
    parser.add_argument("--spice-url", default=None, help="where spice records live")


def open_repository(args):
    """The Repository named by parsed ``args`` (see :func:`add_repository_arguments`)."""
    url = args.url if "{" in args.url else args.url.rstrip("/") + "/{proposal}/{sample}"
    return Repository(url, spice_url=args.spice_url, **dict(args.field))


def print_table(frame, out=None):
    """Print a DataFrame as a plain-text table without the index."""
    out = out or sys.stdout
    if frame.empty:
        print("(empty)", file=out)
        return
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        print(frame.to_string(index=False), file=out)


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
    from . import synthetic

    args.dir = os.path.abspath(args.dir)
    root = synthetic.eqegs_root(args.dir)
    if root.exists():
        print(f"demo tree already at {root}; showing it (remove the folder to write a new one)")
    else:
        print(f"writing a synthetic E-QEGS tree (preset {args.preset}, seed {args.seed}) to {args.dir} ...")
        synthetic.write_tree(args.dir, preset=args.preset, seed=args.seed)
    repo = Repository(f"{root}/{{proposal}}/{{sample}}")
    print(f"\nrepository {repo.url}")
    print_table(repo.table())
    for key in repo.all():
        print(f"\nproposal {key}")
        print_table(repo[key].table()[["key", "handle", "frames", "sensors", "sensor_shape", "dtype", "problem"]])
    print(f"\nground truth (tau, f_q, beam centre ...) in {args.dir}/truth/")
    print(f"browse it: eqegs ls {root} [PROPOSAL]; in Python: Repository({repo.url!r})")


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

    p = sub.add_parser("demo", help="write a synthetic demo tree (no data needed) and show it")
    p.add_argument("dir", nargs="?", default="eqegs-demo", help="where to write it (default ./eqegs-demo)")
    p.add_argument("--preset", default="tiny", help="size preset: tiny, small, medium, full")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(run=cmd_demo)

    cli_spice.register(sub)
    return parser


def main(argv=None):
    """Entry point of ``eqegs``; returns the exit status (0 ok, 1 user error)."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except EqegsError as exc:
        print(f"eqegs: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")
    return 0


if __name__ == "__main__":
    sys.exit(main())
