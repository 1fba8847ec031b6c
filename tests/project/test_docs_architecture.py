"""docs/architecture.md#the-rooms names every module of eqegs_repo/ and spice/, and no module
that does not exist, so the page follows the tree."""
import re

from tests.helpers import ROOT


def rooms_section():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    return text[text.index("## The rooms"):text.index("## Import rules")]


def test_the_rooms_name_every_module_and_only_existing_ones():
    section = rooms_section()
    named = set(re.findall(r"`(\w+\.py)`", section))
    modules = {p.name for package in ("eqegs_repo", "spice") for p in (ROOT / package).rglob("*.py")
               if p.name != "__init__.py" or p.parent.name == "eqegs_repo"}
    assert sorted(modules - named) == [], "modules missing from docs/architecture.md#the-rooms"
    assert sorted(named - modules - {"__init__.py"}) == [], "files named on the page that do not exist"


def test_the_rooms_name_every_subpackage():
    section = rooms_section()
    folders = {p.parent.relative_to(ROOT / "eqegs_repo").as_posix()
               for p in (ROOT / "eqegs_repo").rglob("__init__.py") if p.parent != ROOT / "eqegs_repo"}
    for folder in folders:
        assert f"`{folder.rsplit('/', 1)[-1]}/`" in section, f"eqegs_repo/{folder}/ is not on the page"
