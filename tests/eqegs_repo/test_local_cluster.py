"""The reanalysis' own local cluster: no dashboard unless asked, and threads (with a warning)
for a script without the ``if __name__ == "__main__":`` guard instead of 200 lines of
"Nanny failed to start"."""
import os
import subprocess
import sys
import textwrap
import types

import pytest

from eqegs_repo import Repository, local_cluster
from tests.helpers import ROOT
from tests.helpers.cooktrees import image_params, seed_spice, write_runs


class FakeCluster:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.dashboard_link = "http://127.0.0.1:12345/status"


FAKE_DISTRIBUTED = types.SimpleNamespace(LocalCluster=FakeCluster)


def main_module(monkeypatch, tmp_path, text):
    script = tmp_path / "analysis.py"
    script.write_text(text)
    module = types.ModuleType("__main__")
    module.__file__ = str(script)
    module.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", module)
    return str(script)


def test_no_dashboard_unless_asked(monkeypatch, tmp_path, capsys):
    main_module(monkeypatch, tmp_path, 'if __name__ == "__main__":\n    pass\n')
    cluster = local_cluster.local_cluster(FAKE_DISTRIBUTED, 3, False)
    assert cluster.kwargs == dict(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": ":0"})   # HTTP routes: a free port
    assert capsys.readouterr().err == ""
    assert local_cluster.local_cluster(FAKE_DISTRIBUTED, 3, True).kwargs["dashboard_address"] == ":0"  # a free port
    assert local_cluster.local_cluster(FAKE_DISTRIBUTED, 3, True).kwargs["scheduler_kwargs"] == {}
    assert "Dask dashboard: http://127.0.0.1:12345/status" in capsys.readouterr().err
    assert local_cluster.local_cluster(FAKE_DISTRIBUTED, 3, ":8790").kwargs["dashboard_address"] == ":8790"


def test_a_script_without_the_guard_gets_threads_and_a_warning(monkeypatch, tmp_path):
    script = main_module(monkeypatch, tmp_path, "from eqegs_repo import Repository\nrepo.reanalyze()\n")
    assert local_cluster.unguarded_script() == script
    with pytest.warns(RuntimeWarning, match=r"has no 'if __name__ == \"__main__\":' guard.*2 thread"):
        cluster = local_cluster.local_cluster(FAKE_DISTRIBUTED, 2, False)
    assert cluster.kwargs["processes"] is False and cluster.kwargs["threads_per_worker"] == 2
    main_module(monkeypatch, tmp_path, "def main():\n    ...\n\nif '__main__' == __name__:\n    main()\n")
    assert local_cluster.unguarded_script() is None


def test_interactive_sessions_and_python_m_need_no_guard(monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))      # IPython, -c
    assert local_cluster.unguarded_script() is None
    package_main = types.ModuleType("__main__")
    package_main.__file__ = __file__
    package_main.__spec__ = types.SimpleNamespace(name="eqegs_repo.__main__")         # python -m eqegs_repo
    monkeypatch.setitem(sys.modules, "__main__", package_main)
    assert local_cluster.unguarded_script() is None


def test_an_unguarded_script_runs_to_the_end(tmp_path):
    pytest.importorskip("distributed")
    params = image_params(n_frames=256)
    write_runs(tmp_path, params, [1, 2])
    seed_spice(Repository(f"{tmp_path}/{{proposal}}/{{sample}}", cache_url=False)["2025A1234"], params,
               bg_n_points=10, n_mc=20)
    script = tmp_path / "pasted.py"
    script.write_text(textwrap.dedent(f"""
        import socket

        from eqegs_repo import Repository

        taken = socket.socket()   # 8787 in use (by us, or by another cluster on the machine)
        try:
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        except OSError:
            pass
        repo = Repository({str(tmp_path)!r} + "/{{proposal}}/{{sample}}", cache_url=False)
        table = repo.reanalyze(samples="S00[1-2]", workers=2)
        print(list(table.status))
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['ok', 'ok']"
    assert "guard" in result.stderr and "Nanny failed" not in result.stderr
    assert "8787" not in result.stderr                 # no "Port 8787 is already in use"


def test_the_reanalysis_pages_script_runs_with_worker_processes(tmp_path):
    """docs/reanalysis.md's reanalyse.py (shown, with the guard) as a real script."""
    pytest.importorskip("distributed")
    import re

    from eqegs_repo.cli.main import main
    from eqegs_repo.simulate import synthetic

    page = (ROOT / "docs" / "reanalysis.md").read_text()
    code = re.search(r'^```python title="reanalyse.py"\n(.*?)^```', page, re.S | re.M).group(1)
    assert 'if __name__ == "__main__":' in code
    (tmp_path / "reanalyse.py").write_text(code)
    assert main(["demo", str(tmp_path / "demo")]) == 0
    result = subprocess.run([sys.executable, "reanalyse.py", str(synthetic.eqegs_root(tmp_path / "demo"))],
                            capture_output=True, text=True, timeout=240, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" ok ") == 5 and "guard" not in result.stderr
    assert (tmp_path / "reanalysis.csv").exists()

