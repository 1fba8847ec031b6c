"""Sample conditions (the ``conditions`` spice type): resolved into table columns, and read from
the comments of the app's data_table.csv (docs/spice.md#sample-conditions).

:func:`condition_columns` turns a sample's resolved view into ``temperature_K``,
``pressure_Pa`` and one ``conditions.<name>`` column per free field; :func:`parse_conditions`
reads the ``T=300K P=0.1MPa name=value`` words of one comment into ``conditions`` fields, or
raises :class:`ConditionSyntaxError` naming the word and what was expected.
"""
import math
import re

from eqegs_repo.params.types import (
    CELSIUS_OFFSET_K,
    CONDITION_NAME,
    CONDITIONS,
    PRESSURE_UNITS,
)

CONDITION_COLUMNS = ("temperature_K", "pressure_Pa")
"""The fixed condition columns of the tables; free fields add ``conditions.<name>`` columns."""
FREE_PREFIX = "conditions."
"""Start of the column name of a free condition field."""
TEMPERATURE_UNITS = {"K": "K", "C": "C", "°C": "C", "degC": "C"}
"""Unit suffixes of ``T=`` in a comment and the ``temperature_unit`` each stands for."""
_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_WORD = re.compile(r"([^=\s]+)=(\S*)")


class ConditionSyntaxError(ValueError):
    """A word of a comment that looks like a condition (``KEY=VALUE``) but cannot be read:
    ``word`` the text, ``expected`` what it should be."""

    def __init__(self, word, expected):
        super().__init__(f"{word!r}: expected {expected}")
        self.word = word
        self.expected = expected


def temperature_kelvin(value, unit):
    """``value`` in ``unit`` (``"K"`` or ``"C"``) as K; None stays None."""
    if value is None:
        return None
    return float(value) + (CELSIUS_OFFSET_K if unit == "C" else 0.0)


def pressure_pascal(value, unit):
    """``value`` in ``unit`` (a key of :data:`~eqegs_repo.params.types.PRESSURE_UNITS`) as Pa;
    None stays None."""
    return None if value is None else float(value) * PRESSURE_UNITS[unit]


def condition_columns(view):
    """``{temperature_K, pressure_Pa, conditions.<name>...}`` of a resolved view (a sample's
    ``spice``): the temperature in K, the pressure in Pa (None when not recorded) and each free
    field under ``conditions.<name>``."""
    record = view["conditions"]
    out = {"temperature_K": temperature_kelvin(record["temperature"], record["temperature_unit"]),
           "pressure_Pa": pressure_pascal(record["pressure"], record["pressure_unit"])}
    out.update({FREE_PREFIX + name: value for name, value in record["fields"].items()})
    return out


def free_columns(rows):
    """The ``conditions.<name>`` columns present in any of ``rows`` (dicts), in first-seen order."""
    seen = {}
    for row in rows:
        seen.update(dict.fromkeys(name for name in row if name.startswith(FREE_PREFIX)))
    return list(seen)


def _unit_value(word, text, units, what):
    match = re.fullmatch(f"({_NUMBER})(.*)", text)
    if match is None or match.group(2) not in units:
        raise ConditionSyntaxError(word, f"{what}: a number followed by one of "
                                   + ", ".join(units) + " (no space)")
    value = float(match.group(1))
    if not math.isfinite(value):
        raise ConditionSyntaxError(word, f"{what}: a finite number")
    return value, match.group(2)


def _free_value(text):
    """A number when ``text`` is one, else the text."""
    return float(text) if re.fullmatch(_NUMBER, text) else text


def parse_conditions(comment):
    """The ``conditions`` fields written in a data_table.csv comment.

    The comment's words (split at white space) of the form ``KEY=VALUE`` are conditions; other
    words are prose and ignored. ``T=300K``, ``T=25C`` (or ``25°C``, ``25degC``): temperature
    with its unit; ``P=0.1MPa``: pressure with a unit of
    :data:`~eqegs_repo.params.types.PRESSURE_UNITS`; any other ``name=value`` (``name``
    matching :data:`~eqegs_repo.params.types.CONDITION_NAME`): a free field, a number when
    ``value`` reads as one, else text. Returns ``{}`` when the comment has none; the result is
    checked against the ``conditions`` schema. Raises :class:`ConditionSyntaxError` for a word
    that cannot be read (``T=300`` without unit, ``P=1psi``, a key given twice, a bad name, an
    empty value, a value the schema refuses).
    """
    data, fields = {}, {}
    for word in comment.split():
        match = _WORD.fullmatch(word)
        if match is None:
            continue
        key, text = match.groups()
        if key == "T":
            if "temperature" in data:
                raise ConditionSyntaxError(word, "one T= per comment")
            data["temperature"], unit = _unit_value(word, text, TEMPERATURE_UNITS, "temperature")
            data["temperature_unit"] = TEMPERATURE_UNITS[unit]
        elif key == "P":
            if "pressure" in data:
                raise ConditionSyntaxError(word, "one P= per comment")
            data["pressure"], data["pressure_unit"] = _unit_value(word, text, PRESSURE_UNITS, "pressure")
        elif not re.fullmatch(CONDITION_NAME, key) or not text or key in fields:
            raise ConditionSyntaxError(word, f"name=value with a name matching {CONDITION_NAME}, "
                                       "a value and each name once (T= and P= need a unit)")
        else:
            fields[key] = _free_value(text)
    if fields:
        data["fields"] = fields
    if data:
        try:
            data = CONDITIONS.validate(data)
        except ValueError as exc:  # SpiceValidationError: a value out of range
            raise ConditionSyntaxError(comment, str(exc)) from None
    return data
