"""The parameter tables of docs/physics.md are those of the spice schemas (params/types.py).

Adding or changing a field changes the expected table; the failure message prints the whole
section to paste into the page (docs/architecture.md#adding-a-parameter).
"""
import json

from eqegs_repo.params import types
from tests.helpers import ROOT

PAGE = ROOT / "docs" / "physics.md"
FIRST, AFTER = "### Type `sensor_layout`", "## App conventions"


def default_text(row):
    default = row["default"]
    if row["required"]:
        return "required"
    if default is None:
        return "null"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, str):
        return f"`{default}`" if default else '`""`'
    return "`" + json.dumps(default, separators=(",", ":")).replace('"', "") + "`"


def parameter_tables():
    """The markdown of every ``### Type `name``` table, from :func:`types.schema_rows`."""
    rows = types.schema_rows()
    lines = []
    for schema in types.SCHEMAS:
        lines += [f"### Type `{schema.name}`", "", "| field | kind | unit | default | allowed | meaning |",
                  "|---|---|---|---|---|---|"]
        for row in (r for r in rows if r["type"] == schema.name):
            cells = (f"`{row['field']}`", row["kind"], row["unit"], default_text(row),
                     str(row["allowed"]), str(row["doc"]))
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines).strip()


def page_tables():
    text = PAGE.read_text(encoding="utf-8")
    return text[text.index(FIRST):text.index(AFTER)].strip()


def test_the_physics_page_lists_every_field_as_the_schemas_define_it():
    expected = parameter_tables()
    assert page_tables() == expected, (
        "docs/physics.md#parameters differs from eqegs_repo.params.types.schema_rows(); "
        f"replace the tables from '{FIRST}' up to '{AFTER}' with:\n\n{expected}\n")


def test_a_field_missing_from_the_page_is_noticed(monkeypatch):
    rows = types.schema_rows()
    extra = dict(rows[-1], field="new_field", kind="int", unit="px", default=3,
                 doc="a new parameter")
    monkeypatch.setattr(types, "schema_rows", lambda: rows + [extra])
    expected = parameter_tables()
    assert "| `new_field` | int | px | `3` |" in expected
    assert page_tables() != expected
