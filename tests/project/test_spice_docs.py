"""The python examples of docs/spice.md run as written, in order, in one namespace."""
import re

from tests.helpers import ROOT

DOC = ROOT / "docs" / "spice.md"


def test_spice_page_examples_run(capsys):
    blocks = re.findall(r"^```python(?:[ \t][^\n]*)?\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    assert len(blocks) >= 8
    namespace = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "150 10.1" in out and "224 230" in out and "140 150" in out
    assert "q_min = 14.0 must be smaller than q_max = 10.0" in out
    assert "no matching sample" in out and "[80, 150] [70, 140]" in out
    assert "roi S002 True" in out and "spice of '2025A1234/S002': roi is conflicted" in out
    assert "more than the 1000000-byte limit readers accept; nothing was stored" in out
    assert "(300 characters) is too long" in out and "at most 235 characters" in out
    assert "100.2 24.4311294766" in out and "Poni2: 0.00181" in out  # PONI import, then export
