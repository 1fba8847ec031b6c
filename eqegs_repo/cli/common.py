"""What every ``eqegs`` command shares: the repository arguments, ``NAME=VALUE`` words,
``--set`` overrides and plain-text tables."""
import argparse
import json
import sys

import pandas as pd

from eqegs_repo.errors import BadInput
from eqegs_repo.repository import Repository


def assignment(text):
    """argparse type of ``NAME=VALUE`` words: ``(name, value text)``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def override_values(pairs):
    """``--set`` pairs -> overrides: each value read as JSON (``10.1``, ``true``, ``null``,
    ``[1, 2]``, ``{"a": 1}``), else kept as text."""
    overrides = {}
    for name, text in pairs:
        try:
            overrides[name] = json.loads(text)
        except ValueError:
            digits = text.strip().lstrip("+-")
            if digits.isdigit():  # an integer too long to read (Python's limit: 4300 digits)
                raise BadInput(f"--set {name}={text.strip()[:12]}... : an integer of {len(digits)} digits "
                               "cannot be read; parameters are far smaller (see eqegs spice types)") from None
            overrides[name] = text
    return overrides


def os_error_text(exc):
    """One line for an OSError: the path(s) it names and the reason (``strerror``)."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{paths}: {reason}" if paths else reason


def one_line_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` of the command line: ``eqegs: warning: <message>``."""
    print(f"eqegs: warning: {message}", file=file or sys.stderr)


def add_repository_arguments(parser):
    """The arguments every repository command takes: URL, -f NAME=VALUE, --spice-url."""
    parser.add_argument("url", metavar="URL", help="repository URL pattern or EQEGS folder")
    parser.add_argument("-f", "--field", type=assignment, action="append", default=[],
                        metavar="NAME=VALUE", help="fill a {NAME} field of the URL (repeatable)")
    parser.add_argument("--spice-url", default=None, help="where spice records live")


def open_repository(args):
    """The Repository named by parsed ``args`` (see :func:`add_repository_arguments`)."""
    url = args.url if "{" in args.url else args.url.rstrip("/") + "/{proposal}/{sample}"
    return Repository(url, spice_url=args.spice_url, cache_url=getattr(args, "cache_url", None),
                      **dict(args.field))


def print_table(frame, out=None):
    """Print a DataFrame as a plain-text table without the index."""
    out = out or sys.stdout
    if frame.empty:
        print("(empty)", file=out)
        return
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        print(frame.to_string(index=False), file=out)
