"""Every ```python block in docs/*.md runs, in order, one namespace per page."""
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_python_examples_in_docs_run(page, tmp_path, monkeypatch, eqegs_engine):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{page[:-3]}"}
    for i, code in enumerate(BLOCK.findall((DOCS / page).read_text())):
        try:
            exec(compile(code, f"{page}[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page}, python block {i} failed: {exc!r}\n{code}") from exc
