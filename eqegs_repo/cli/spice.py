"""``eqegs spice``: show and edit spice parameter records from the shell.

Sub-commands (each takes ``URL PROPOSAL`` like the other commands; options and positionals may
come in any order)::

    eqegs spice show URL PROPOSAL [SAMPLE]             current records, or a sample's view
    eqegs spice seed URL PROPOSAL TYPE --anchor A FIELD=VALUE ...
    eqegs spice update URL PROPOSAL TYPE --anchor A FIELD=VALUE ...
    eqegs spice erase URL PROPOSAL TYPE --anchor A
    eqegs spice history URL PROPOSAL TYPE [--anchor A]
    eqegs spice diff URL PROPOSAL A B                  two sample keys, or two record uuids
    eqegs spice import-table URL PROPOSAL PATH         the app's data_table.csv
    eqegs spice import-poni URL PROPOSAL [--anchor A] FILE.poni   pyFAI geometry + beam centre
    eqegs spice export-poni URL PROPOSAL SAMPLE FILE.poni         a sample's geometry as .poni
    eqegs spice types [TYPE]                           fields, units, ranges, defaults

``--scope repository`` works on the repository-wide records (anchors are proposal keys).
Values are read as YAML scalars or lists (``3``, ``1.5``, ``null``, ``true``, ``[1, 2]``);
fields declared as text keep the text as typed.
"""
import argparse
import sys

from eqegs_repo.cli.common import add_repository_arguments, assignment, open_repository
from eqegs_repo.errors import BadInput, EqegsError, closest_keys

DESCRIPTION = "show and edit spice parameter records (the versioned parameters of the analysis)"
EPILOG = """\
examples:
  eqegs spice show URL 2025A1234 S001         a sample's parameters and the records they come from
  eqegs spice seed URL 2025A1234 roi --anchor S001 x0=150 y0=280 x1=224 y1=328
  eqegs spice update URL 2025A1234 q_range --anchor '' q_min=10.5 --comment "narrower ring"
  eqegs spice history URL 2025A1234 roi       every record of a type, oldest first
  eqegs spice types q_range                   the fields of a type: meaning, unit, default

An anchor is the key from which on a record applies ('' : every key). Values are read as YAML
(3, 1.5, null, true, [1, 2]); fields declared as text keep the text as typed.
documentation: docs/spice.md of the eqegs_repo project.
"""


def parse_value(type_name, field, text):
    """The Python value of ``FIELD=VALUE`` text for a field of a type."""
    import yaml

    from eqegs_repo.params import types as params
    from spice import SpiceValidationError
    from spice.records import short_repr

    schema = params.REGISTRY.get(type_name)
    kind = None
    if schema is not None and field in [f.name for f in schema.fields]:
        kind = schema.field(field).kind
    if kind == "str" and text.strip() not in ("null", "~"):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise SpiceValidationError(f"{type_name}.{field} = {short_repr(text)} cannot be read as a value: "
                                   f"{str(exc).split(';')[0]}") from None


def _fields(args):
    return {name: parse_value(args.type, name, text) for name, text in args.values}


def check_type(name):
    """Raise BadInput naming the closest spice types when ``name`` is not one (None passes)."""
    from eqegs_repo.params import types as params

    if name is not None and name not in params.REGISTRY:
        close = closest_keys(name, list(params.REGISTRY))
        hint = f"closest: {', '.join(close)}" if close else f"types: {', '.join(params.REGISTRY)}"
        raise BadInput(f"no spice type {name!r} ({hint}); eqegs spice types lists them")


def _collection(repo, args):
    if args.scope == "repository":
        return repo.spice
    return repo[args.proposal].spice


def _lasting(repo, collection, args):
    """``collection``, refused (BadInput) for a command that writes when its records would end
    with the process (``spice_url: memory://``): the command would report a record that
    vanishes at exit."""
    if collection.store.lasting:
        return collection
    path = getattr(getattr(repo, "config", None), "path", None)
    given = "--spice-url" if args.spice_url else f"spice_url in {path}" if path else "the repository's spice_url"
    url = getattr(repo, "spice_url", None) or collection.store.url
    raise BadInput(f"eqegs spice {args.spice_command}: expected a spice folder that lasts, found {url} "
                   f"({given}): records kept in memory end with this command, so nothing was written. "
                   "Give a folder or URL with --spice-url or spice_url in eqegs.yaml (memory:// is for "
                   "a Python session)")


def cmd_show(repo, args, out):
    """Print a sample's resolved view, or the current records of the scope."""
    if args.sample:
        view = repo[args.proposal][args.sample].spice
        print(view.text(types=None if args.type is None else [args.type]), file=out)
        problems = view.problems
    else:
        collection = _collection(repo, args)
        current = collection.current()
        if args.type:
            current = type(current)([r for r in current if r.type == args.type],
                                    current.statuses)
        print(f"{collection.scope} records in {collection.store.url}:", file=out)
        print(repr(current), file=out)
        problems = collection.problems
    for problem in problems:
        print(f"! skipped {problem}", file=out)


def cmd_seed(repo, args, out):
    values = _fields(args)
    record = _lasting(repo, _collection(repo, args), args).seed(
        args.type, args.anchor, values, comment=args.comment, author=args.author, replace=args.replace)
    print(f"seeded {record.type} at {record.anchor!r}: revision {record.revision}, "
          f"uuid {record.uuid}", file=out)


def cmd_update(repo, args, out):
    values = _fields(args)
    record = _lasting(repo, _collection(repo, args), args).update(
        args.type, args.anchor, values, comment=args.comment, author=args.author, base=args.base,
        retry=args.retry)
    print(f"updated {record.type} at {record.anchor!r}: revision {record.revision}, "
          f"uuid {record.uuid}", file=out)


def cmd_erase(repo, args, out):
    record = _lasting(repo, _collection(repo, args), args).erase(
        args.type, args.anchor, comment=args.comment, author=args.author)
    print(f"erased {record.type} at {record.anchor!r}: revision {record.revision}, "
          f"uuid {record.uuid}", file=out)


def cmd_history(repo, args, out):
    print(repr(_collection(repo, args).history(args.type, args.anchor)), file=out)


def cmd_diff(repo, args, out):
    """Diff two samples' views (both names are sample keys) or two records (uuids)."""
    proposal = repo[args.proposal]
    keys = set(proposal.sample_keys())
    if args.scope == "proposal" and args.a in keys and args.b in keys:
        print(repr(proposal[args.a].spice.diff(proposal[args.b].spice)), file=out)
    else:
        print(repr(_collection(repo, args).diff(args.a, args.b)), file=out)


def cmd_import_table(repo, args, out):
    collection = repo[args.proposal].spice
    if not args.dry_run:
        _lasting(repo, collection, args)
    report = collection.import_data_table(args.path, dry_run=args.dry_run, author=args.author,
                                          conditions_from_comments=args.conditions_from_comments)
    print(repr(report), file=out)


def cmd_types(args, out):
    """Print the fields of each type (or of one): unit, default (or ``required``) and meaning,
    with the allowed values after it. The meanings are the schemas' field docs, the text of
    docs/physics.md's parameter tables too; long ones wrap within the page width."""
    import textwrap

    from eqegs_repo.params import types as params
    from spice.display import WIDTH, format_value, text_table

    check_type(args.type)
    blocks = []
    for schema in params.SCHEMAS:
        if args.type not in (None, schema.name):
            continue
        rows = [(r["field"], r["unit"], "required" if r["required"] else format_value(r["default"], 24),
                 f"{r['doc']} (allowed: {r['allowed']})")
                for r in params.schema_rows() if r["type"] == schema.name]
        title = textwrap.fill(f"{schema.name}: {schema.doc}" if schema.doc else schema.name, WIDTH)
        blocks.append(title + "\n" + text_table(("field", "unit", "default", "meaning"), rows, wrap=3))
    print("\n\n".join(blocks), file=out)


COMMANDS = {"show": cmd_show, "seed": cmd_seed, "update": cmd_update, "erase": cmd_erase,
            "history": cmd_history, "diff": cmd_diff, "import-table": cmd_import_table}


def cmd_import_poni(repo, args, out):
    """Write the geometry (and beam centre) of a pyFAI .poni file at an anchor."""
    from eqegs_repo.params.poni_spice import import_poni

    collection = _collection(repo, args)
    if not args.dry_run:
        _lasting(repo, collection, args)
    report = import_poni(collection, args.path, args.anchor,
                         centre=not args.no_centre, dry_run=args.dry_run, author=args.author,
                         comment=args.comment or None)
    print(repr(report), file=out)


def cmd_export_poni(repo, args, out):
    """Write a sample's geometry and beam centre as a pyFAI .poni file."""
    sample = repo[args.proposal][args.sample]
    poni = sample.export_poni(args.path, cook=args.cook, overwrite=args.overwrite)
    print(f"wrote {args.path}: Distance {poni.distance_m:.6g} m, Poni1 {poni.poni1_m:.6g} m, "
          f"Poni2 {poni.poni2_m:.6g} m, Wavelength {poni.wavelength_m:.6g} m", file=out)


COMMANDS.update({"import-poni": cmd_import_poni, "export-poni": cmd_export_poni})


def register_poni(command):
    """The ``import-poni`` and ``export-poni`` sub-commands (``command``: see :func:`register`)."""
    p = command("import-poni", "write the geometry and beam centre of a pyFAI .poni file")
    p.add_argument("path", metavar="FILE.poni", help="pyFAI PONI file (path or URL)")
    p.add_argument("--anchor", default="",
                   help="key from which on the records apply ('' = default, every key)")
    p.add_argument("--no-centre", action="store_true",
                   help="write the geometry only, not the q_integration beam centre")
    p.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    p.add_argument("--comment", default="", help="why (stored in the records)")
    p.add_argument("--author", default=None, help="default: $SPICE_AUTHOR or login")
    p = command("export-poni", "write a sample's geometry and beam centre as a pyFAI .poni file",
                scope=False)
    p.add_argument("sample", metavar="SAMPLE", help="sample key")
    p.add_argument("path", metavar="FILE.poni", help="file to write (path or URL)")
    p.add_argument("--cook", action="store_true",
                   help="cook the reconstruction for its beam centre when it is not cached")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")


def register(subparsers):
    """Add the ``spice`` command (with its sub-commands) to an argparse sub-parser set."""
    spice = subparsers.add_parser("spice", help="show and edit spice parameter records",
                                  description=DESCRIPTION, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = spice.add_subparsers(dest="spice_command", required=True, metavar="SUBCOMMAND",
                               title="sub-commands",
                               help="one of these; eqegs spice SUBCOMMAND --help for its arguments")

    def command(name, help_text, scope=True):
        parser = sub.add_parser(name, help=help_text)
        add_repository_arguments(parser)
        parser.add_argument("proposal", metavar="PROPOSAL", help="proposal key")
        if scope:
            parser.add_argument("--scope", choices=("proposal", "repository"),
                                default="proposal",
                                help="proposal records (anchors: samples; default) or "
                                     "repository records (anchors: proposals)")
        parser.set_defaults(run=run)
        return parser

    def writer(parser, with_values):
        parser.add_argument("type", metavar="TYPE", help="parameter type, e.g. roi (eqegs spice types)")
        if with_values:
            parser.add_argument("--anchor", default="", metavar="A",
                                help="key from which on the record applies ('' = default, every key)")
            parser.add_argument("values", metavar="FIELD=VALUE", nargs="*", type=assignment,
                                help="field values, read as YAML (3, 1.5, null, true, [1, 2]); "
                                     "text fields keep the text as typed")
        else:
            parser.add_argument("--anchor", required=True,
                                help="key from which on the record applies ('' = default, every key)")
        parser.add_argument("--comment", default="", help="why (stored in the record)")
        parser.add_argument("--author", default=None, help="default: $SPICE_AUTHOR or login")

    p = command("show", "a sample's resolved parameters, or the current records")
    p.add_argument("sample", metavar="SAMPLE", nargs="?",
                   help="sample key: its resolved view (omit for the current records)")
    p.add_argument("--type", default=None, help="only this type")

    for name, help_text in (("seed", "write the first record of a type at an anchor"),
                            ("update", "merge changes into a new revision at an anchor")):
        p = command(name, help_text)
        writer(p, with_values=True)
        if name == "seed":
            p.add_argument("--replace", action="store_true",
                           help="replace a live record at the anchor")
        else:
            p.add_argument("--base", default=None, help="uuid to start from (conflicts)")
            p.add_argument("--retry", action="store_true",
                           help="re-merge on the new head if another writer was first")

    p = command("erase", "erase a type at an anchor (keys fall back to the previous anchor)")
    writer(p, with_values=False)

    p = command("history", "every record of a type, oldest first")
    p.add_argument("type", metavar="TYPE", help="parameter type, e.g. roi (eqegs spice types)")
    p.add_argument("--anchor", default=None, help="only this anchor")

    p = command("diff", "differences between two samples' views or two records")
    p.add_argument("a", metavar="A", help="sample key or record uuid (prefix)")
    p.add_argument("b", metavar="B", help="sample key or record uuid (prefix)")

    p = command("import-table", "import the app's data_table.csv as calibration records",
                scope=False)
    p.add_argument("path", metavar="PATH", help="data_table.csv (path or URL; at most 16 MiB "
                                                "and 100,000 rows)")
    p.add_argument("--dry-run", action="store_true",
                   help="the same checks of every row and the report, writing nothing")
    p.add_argument("--conditions-from-comments", action="store_true",
                   help="also write conditions records from the comments' T=300K P=0.1MPa name=value "
                        "words (docs/spice.md#sample-conditions)")
    p.add_argument("--author", default=None, help="default: $SPICE_AUTHOR or login")

    register_poni(command)

    p = sub.add_parser("types", help="the fields of the types: meaning, unit, default, allowed values")
    p.add_argument("type", metavar="TYPE", nargs="?", default=None, help="only this type (omit for all)")
    p.set_defaults(run=run)
    return spice


def run(args, out=None, repo=None):
    """Run a parsed ``eqegs spice`` command; spice errors become EqegsError (exit status 1).

    ``repo`` (a Repository) skips opening one from ``args``.
    """
    from spice import SpiceError

    out = out or sys.stdout
    try:
        check_type(getattr(args, "type", None))
        if args.spice_command == "types":
            cmd_types(args, out)
            return
        if repo is None:
            repo = open_repository(args)
        COMMANDS[args.spice_command](repo, args, out)
    except SpiceError as exc:
        raise EqegsError(f"spice: {exc}") from exc
