"""What every ``eqegs`` command shares: the repository arguments, ``NAME=VALUE`` words,
``--set`` overrides and plain-text tables."""
import argparse
import json
import sys


from eqegs_repo.display import drop_empty, text_view
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
    """The arguments every repository command takes: URL, -f NAME=VALUE, --spice-url,
    --cache-url (the last two default to the tree's eqegs.yaml, docs/configuration.md)."""
    parser.add_argument("url", metavar="URL", help="repository URL pattern or EQEGS folder")
    parser.add_argument("-f", "--field", type=assignment, action="append", default=[],
                        metavar="NAME=VALUE", help="fill a {NAME} field of the URL (repeatable)")
    parser.add_argument("--spice-url", default=None,
                        help="where spice records live (default: eqegs.yaml, else the tree's .spice/)")
    parser.add_argument("--cache-url", default=None,
                        help="where cooked results are cached (default: eqegs.yaml, else ~/.cache/eqegs_repo)")


def open_repository(args, empty_ok=False):
    """The Repository named by parsed ``args`` (see :func:`add_repository_arguments`).

    Unless ``empty_ok``, a root that lists no proposal while holding folders (the URL names
    the wrong level, e.g. a proposal folder) raises BadInput saying what was found and where
    the proposals probably are."""
    repo = Repository(args.url, spice_url=args.spice_url, cache_url=args.cache_url, **dict(args.field))
    if not empty_ok:
        problem = repo.explain_empty()
        if problem:
            raise BadInput(problem)
    return repo


def print_table(frame, out=None, legend=None):
    """Print a DataFrame as a plain-text table without the index and its empty columns,
    at most about 120 characters wide (:func:`eqegs_repo.display.text_view`)."""
    print(text_view(drop_empty(frame), legend=legend), file=out or sys.stdout)
