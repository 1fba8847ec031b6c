"""One way to write a value with its error (eqegs_repo.measured): the error to two significant
digits, the value to the same decimal place, half away from zero."""
import math

import pytest

from eqegs_repo import figures
from eqegs_repo.measured import with_error


@pytest.mark.parametrize("value, error, text", [
    (98.765, 3.21, "98.8 ± 3.2 ns"),
    (99.46, 3.137, "99.5 ± 3.1 ns"),
    (0.70123, 0.0412, "0.701 ± 0.041 ns"),
    (43.25, 3, "43.3 ± 3.0 ns"),          # half away from zero, not to even (round() gives 43.2)
    (12345, 345, "12350 ± 350 ns"),       # errors of 100 and more: the value to tens, hundreds...
    (1234.5, 250.0, "1230 ± 250 ns"),
    (0.12345, 0.0995, "0.12 ± 0.10 ns"),  # the error rounds up to a new digit: one place less
    (1.0, 9.96, "1 ± 10 ns"),
    (-0.00041, 0.00123, "-0.0004 ± 0.0012 ns"),
    (0.5, float("nan"), "0.5 ns"),        # no usable error: the value alone, 4 significant digits
    (123.456, 0.0, "123.5 ns"),
    (math.inf, 1.0, "inf ns"),
])
def test_the_error_has_two_significant_digits_and_the_value_its_decimal_place(value, error, text):
    assert with_error(value, error, "ns") == text


def test_without_unit_there_is_no_trailing_space():
    assert with_error(0.7, 0.04) == "0.700 ± 0.040"


def test_figures_and_the_command_line_use_the_same_function():
    from eqegs_repo.cli import main

    assert figures.with_error is with_error
    assert main.with_error is with_error
