"""What every ``eqegs`` command shares: the argument parser (suggestions for mistyped words,
options that never swallow positionals), the repository arguments, ``NAME=VALUE`` words,
``--set`` overrides and plain-text tables.

The parser is built from light modules only (``eqegs --help`` imports no numpy, pandas or
xarray); what a command needs is imported when it runs.
"""
import argparse
import io
import json
import re
import string
import sys

from eqegs_repo.errors import BadInput, closest_keys


class Parser(argparse.ArgumentParser):
    """The ``eqegs`` parser and each of its sub-command parsers.

    * An invalid choice (a mistyped command, ``--step``, ``--scope``) names the closest one:
      ``invalid choice: 'cok' (did you mean 'cook'?)``.
    * A command without sub-commands takes options and positionals in any order
      (``argparse``'s intermixed parsing), so ``--anchor S001 x0=150`` leaves ``x0=150`` to the
      positionals and ``--samples S001 URL`` leaves ``URL`` to them.
    """

    _intermixing = False

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            close = closest_keys(value, list(action.choices), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} ({hint}choose from "
                                                 f"{', '.join(map(str, action.choices))})")

    def parse_known_args(self, args=None, namespace=None):
        if self._subparsers is not None or self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # the intermixed parse calls parse_known_args twice itself
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def word_list(text):
    """argparse type of a repeatable option that also takes comma-separated words:
    ``"S001,S00[7-9]"`` -> ``["S001", "S00[7-9]"]`` (use with ``action="extend"``)."""
    words = [word.strip() for word in text.split(",")]
    if not all(words):
        raise argparse.ArgumentTypeError(f"expected words separated by commas, got {text!r}")
    return words


def choice_list(choices):
    """Like :func:`word_list`, each word one of ``choices`` (a mistyped one names the closest)."""
    def parse(text):
        words = word_list(text)
        for word in words:
            if word not in choices:
                close = closest_keys(word, choices, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise argparse.ArgumentTypeError(f"invalid choice: {word!r} ({hint}choose from "
                                                 f"{', '.join(choices)})")
        return words
    return parse


_NEXT_CONDITION = re.compile(r",\s*(?=[A-Za-z_]\w*\.[A-Za-z_]\w*\s*=)")


def condition_list(text):
    """argparse type of ``--where``: ``"a.b=1,c.d=2"`` -> ``["a.b=1", "c.d=2"]``; a comma splits
    only before the next ``TYPE.FIELD=``, so a value may hold commas (``a.b=[1, 2]``)."""
    return _NEXT_CONDITION.split(text)


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
    """``warnings.showwarning`` of the command line: ``eqegs: warning: <message>`` on one line
    (control characters, new lines included, escaped: :func:`spice.display.visible`)."""
    from spice.display import visible

    _printable(file or sys.stderr)
    print(f"eqegs: warning: {visible(message)}", file=file or sys.stderr)


def say_error(error):
    """Print ``eqegs: error: <error>`` on one line of standard error (control characters, new
    lines included, escaped)."""
    from spice.display import visible

    _printable(sys.stderr)
    print(f"eqegs: error: {visible(error)}", file=sys.stderr)


def _printable(stream):
    """Let ``stream`` write any text: characters its encoding lacks (a Japanese folder name
    under ``LC_ALL=C`` or an EUC-JP locale) are written as ``\\u....`` escapes, never an error."""
    try:
        stream.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError, io.UnsupportedOperation):  # not a TextIOWrapper
        pass


class _VisibleOutput:
    """A text stream that passes what it is given to ``stream`` with control characters other
    than new lines and tabs escaped (:func:`spice.display.visible`)."""

    def __init__(self, stream):
        from spice.display import visible

        self._stream, self._visible = stream, visible

    def write(self, text):
        return self._stream.write(self._visible(text, keep="\n\t"))

    def __getattr__(self, name):
        return getattr(self._stream, name)


def visible_output(stream):
    """The command line's standard output: ``stream`` made to write any text
    (:func:`_printable`), with control characters escaped (a folder name holding a terminal
    escape sequence is shown, never obeyed; tables escape new lines too)."""
    _printable(stream)
    return _VisibleOutput(stream)


def add_repository_arguments(parser):
    """The arguments every repository command takes: URL, -f NAME=VALUE, --spice-url,
    --cache-url (the last two default to the tree's eqegs.yaml, docs/configuration.md)."""
    parser.add_argument("url", metavar="URL",
                        help="the EQEGS folder (/data/UserData/u0000000/EQEGS) or a URL pattern with "
                             "{proposal} and {sample} (its other {NAME} fields filled by -f)")
    parser.add_argument("-f", "--field", type=assignment, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="fill a {NAME} field of the URL, e.g. -f account=u0000000 (repeatable)")
    parser.add_argument("--spice-url", default=None,
                        help="where spice records live (default: eqegs.yaml, else the tree's .spice/)")
    parser.add_argument("--cache-url", default=None,
                        help="where cooked results are cached (default: eqegs.yaml, else ~/.cache/eqegs_repo)")


def open_repository(args, empty_ok=False):
    """The Repository named by parsed ``args`` (see :func:`add_repository_arguments`).

    Unless ``empty_ok``, a root that lists no proposal while holding folders (the URL names
    the wrong level, e.g. a proposal folder) raises BadInput saying what was found and where
    the proposals probably are."""
    from eqegs_repo.repository import Repository
    from eqegs_repo.urls import REQUIRED, with_sample_segments

    url = with_sample_segments(args.url)
    given = dict(args.field)
    fields = [name for _, name, _, _ in string.Formatter().parse(url) if name]
    unfilled = [name for name in fields if name not in REQUIRED and name not in given]
    if unfilled:
        raise BadInput(f"the URL {args.url!r} has the field(s) {', '.join('{' + f + '}' for f in unfilled)}; "
                       f"fill each with -f, e.g. -f {unfilled[0]}=...")
    unused = sorted(set(given) - set(fields))
    if unused:
        raise BadInput(f"-f {unused[0]}=... names no field of the URL {args.url!r} "
                       f"(its fields: {', '.join('{' + f + '}' for f in fields)})")
    repo = Repository(url, spice_url=args.spice_url, cache_url=args.cache_url, **given)
    if not empty_ok:
        problem = repo.explain_empty()
        if problem:
            raise BadInput(problem)
    return repo


def print_table(frame, out=None, legend=None):
    """Print a DataFrame as a plain-text table without the index and its empty columns,
    at most about 120 characters wide (:func:`eqegs_repo.display.text_view`)."""
    from eqegs_repo.display import drop_empty, text_view

    print(text_view(drop_empty(frame), legend=legend), file=out or sys.stdout)
