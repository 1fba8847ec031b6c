"""How a measured value and its error are written, everywhere: the command line, the text views
and the figures (``99.5 ± 3.1 ns``).

The rule: the error is rounded to two significant digits and the value to the same decimal
place (``99.46, 3.137`` → ``99.5 ± 3.1``; ``0.7012, 0.0437`` → ``0.701 ± 0.044``; ``12345, 345``
→ ``12340 ± 350``). Without a usable error (zero, negative, NaN or infinite: a fixed parameter or
a failed fit) the value alone is written with four significant digits.
"""
import math
from decimal import ROUND_HALF_UP, Decimal

SIGNIFICANT_ERROR_DIGITS = 2
"""Significant digits of the error; the value is rounded to the same decimal place."""


def with_error(value, error, unit=""):
    """``"99.5 ± 3.1 ns"``: ``value`` and ``error`` (same unit) rounded by the module's rule,
    followed by ``unit`` when given. Arguments are numbers (numpy scalars included)."""
    value, error = float(value), float(error)
    suffix = f" {unit}" if unit else ""
    if not math.isfinite(value) or not (math.isfinite(error) and error > 0):
        return f"{value:.4g}{suffix}"
    decimals = SIGNIFICANT_ERROR_DIGITS - 1 - math.floor(math.log10(error))
    if _rounded(error, decimals) >= Decimal(1).scaleb(SIGNIFICANT_ERROR_DIGITS - decimals):  # 9.96 -> 10
        decimals -= 1
    places = max(decimals, 0)
    return f"{_rounded(value, decimals):.{places}f} ± {_rounded(error, decimals):.{places}f}{suffix}"


def _rounded(number, decimals):
    """``number`` rounded half away from zero at ``decimals`` places (negative: tens, hundreds...)
    of its shortest decimal text, as a Decimal (``round`` would round 43.25 to 43.2)."""
    return Decimal(repr(number)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
