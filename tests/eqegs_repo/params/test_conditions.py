"""The conditions spice type: checked values, the comments of data_table.csv, the table columns."""
import fsspec
import pytest

from eqegs_repo import Repository
from eqegs_repo.params.conditions import (
    ConditionSyntaxError,
    condition_columns,
    parse_conditions,
)
from eqegs_repo.params.data_table import DataTableError
from spice import SpiceValidationError
from tests.helpers import treeutil


@pytest.fixture
def prop(tmp_path):
    treeutil.write_tree(fsspec.filesystem("file"), str(tmp_path / "tree"), {"2025A1234": ["S001", "S002", "S003"]})
    return Repository(str(tmp_path / "tree") + "/{proposal}/{sample}", spice_url="memory://")["2025A1234"]


def test_seeded_conditions_resolve_to_kelvin_pascal_and_free_columns(prop):
    prop.spice.seed("conditions", "S001", temperature=300, temperature_unit="K", pressure=1.0,
                    pressure_unit="bar")
    prop.spice.seed("conditions", "S002", temperature=25, temperature_unit="C", pressure=0.1,
                    pressure_unit="MPa", fields={"humidity": 0.3, "cell": "Al"})
    assert condition_columns(prop["S001"].spice) == {"temperature_K": 300.0, "pressure_Pa": 1e5}
    assert condition_columns(prop["S002"].spice) == {
        "temperature_K": pytest.approx(298.15), "pressure_Pa": pytest.approx(1e5),
        "conditions.humidity": 0.3, "conditions.cell": "Al"}
    # like every spice record, S002's applies to the samples after it until the next anchor
    assert condition_columns(prop["S003"].spice) == condition_columns(prop["S002"].spice)
    table = prop.table(check=False)
    assert list(table.columns[-4:]) == ["temperature_K", "pressure_Pa", "conditions.humidity", "conditions.cell"]
    assert table.set_index("key").loc["S002", "conditions.cell"] == "Al"
    assert table.temperature_K.tolist()[:2] == [300.0, pytest.approx(298.15)]
    assert "temperature_K" in str(table) and "conditions.cell" in str(table)   # the compact view shows them


@pytest.mark.parametrize("values, field", [
    ({"temperature": -5.0}, "temperature = -5 K is not allowed"),
    ({"temperature": -300.0, "temperature_unit": "C"}, "temperature = -300 C = -26.85 K is not allowed"),
    ({"temperature": 300.0, "temperature_unit": "F"}, "conditions.temperature_unit = 'F' is not allowed"),
    ({"pressure": 1.0, "pressure_unit": "psi"}, "conditions.pressure_unit = 'psi'"),
    ({"pressure": -1.0}, "conditions.pressure = -1.0 is not allowed"),
    ({"fields": {f"f{i}": i for i in range(33)}}, "fields has 33 entries; allowed: at most 32"),
    ({"fields": {"2x": 1}}, "fields: name '2x' is not allowed"),
    ({"fields": {"note": "x" * 201}}, "fields.note: text of 201 characters"),
    ({"fields": {"ratio": [1, 2]}}, "fields.ratio = '[1, 2]' is not allowed"),
    ({"fields": {"ratio": float("nan")}}, "fields.ratio = 'nan' is not allowed"),
])
def test_bad_conditions_are_refused_naming_the_field(prop, values, field):
    with pytest.raises(SpiceValidationError) as caught:
        prop.spice.seed("conditions", "S001", **values)
    assert field in str(caught.value)
    assert not prop.spice.current()


def test_comment_syntax():
    assert parse_conditions("first run T=25C P=0.1MPa humidity=0.3 cell=Al after=1e-3") == {
        "temperature": 25.0, "temperature_unit": "C", "pressure": 0.1, "pressure_unit": "MPa",
        "fields": {"humidity": 0.3, "cell": "Al", "after": 0.001}}
    assert parse_conditions("T=300K") == {"temperature": 300.0, "temperature_unit": "K"}
    assert parse_conditions("T=25°C")["temperature_unit"] == "C"
    assert parse_conditions("a comment without conditions") == {}
    for word, expected in (("T=300", "a number followed by one of K, C"), ("P=1psi", "one of Pa, kPa"),
                           ("T=-3K", "above 0 K"), ("T=1K T=2K", "one T= per comment"),
                           ("x=", "name=value"), ("9a=1", "name=value")):
        with pytest.raises(ConditionSyntaxError, match="expected") as caught:
            parse_conditions(word)
        assert expected in caught.value.expected


def test_import_writes_conditions_from_comments_only_when_asked_and_refuses_a_bad_one(prop, tmp_path):
    path = tmp_path / "data_table.csv"
    path.write_text("sample_name, velocity, angle, comment\n001,1,0,run one T=300K P=1bar\n"
                    "002,1,0,T=40C cell=Al\n003,1,0,no conditions\n")
    report = prop.spice.import_data_table(str(path))
    assert not report.conditions and ("conditions", "S001") not in prop.spice.current()
    assert "would write" in repr(prop.spice.import_data_table(str(path), conditions_from_comments=True, dry_run=True))
    report = prop.spice.import_data_table(str(path), conditions_from_comments=True)
    assert [(row.line, key, outcome) for row, key, _, outcome in report.conditions] == [
        (2, "S001", "written r1"), (3, "S002", "written r1")]
    assert condition_columns(prop["S002"].spice) == {"temperature_K": pytest.approx(313.15),
                                                      "pressure_Pa": None, "conditions.cell": "Al"}
    assert prop["S001"].spice.calibration.note == "run one T=300K P=1bar"    # the note keeps the comment
    again = prop.spice.import_data_table(str(path), conditions_from_comments=True)
    assert [outcome for *_, outcome in again.conditions] == ["unchanged", "unchanged"]
    before = prop.spice.current()
    path.write_text("001,1,0,T=310K\n002,1,0,T=300 K\n003,1,0,P=2psi\n")
    with pytest.raises(DataTableError) as caught:
        prop.spice.import_data_table(str(path), conditions_from_comments=True)
    message = str(caught.value)
    assert f"{path} line 2, column comment: found 'T=300'; expected temperature: a number followed" in message
    assert f"{path} line 3, column comment: found 'P=2psi'" in message
    assert prop.spice.current() == before            # nothing written, not even line 1
