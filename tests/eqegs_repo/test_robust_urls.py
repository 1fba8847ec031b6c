"""URLs of other machines: a missing package, a server that closes the connection, and an
eqegs.yaml that names a host (docs/robustness.md, issue 20: M12, L9)."""
import os
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

from eqegs_repo import BadInput, Repository
from eqegs_repo.errors import MissingExtra
from eqegs_repo.cli.main import main
from eqegs_repo.io import config
from tests.helpers import ROOT
from tests.helpers.treeutil import local_fs, write_tree

PROPOSAL = "2025A1234"


class Server:
    """A TCP server on 127.0.0.1 in a thread that accepts connections, counts them and closes
    each at once (``answer``: bytes sent first)."""

    def __init__(self, answer=b""):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.connections += 1
            if self.answer:
                connection.sendall(self.answer)
            connection.close()

    def close(self):
        self.socket.close()


@pytest.fixture
def server():
    running = Server()
    yield running
    running.close()


@pytest.fixture
def tree(tmp_path):
    write_tree(local_fs(), str(tmp_path), {PROPOSAL: ["S001"]})
    return tmp_path


def one_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_an_ftp_server_that_closes_the_connection_is_one_error_naming_the_setting(tree, server, capsys):
    ftp = f"ftp://127.0.0.1:{server.port}"
    with pytest.raises(BadInput, match=rf"repository URL {ftp}/EQEGS/\{{proposal\}}/\{{sample\}}: expected its ftp "
                                       "server to answer, found the connection closed before an answer"):
        Repository(f"{ftp}/EQEGS")
    assert main(["ls", f"{ftp}/EQEGS"]) == 1
    assert "eqegs: error: repository URL ftp://" in one_line(capsys)
    assert main(["cook", str(tree), PROPOSAL, "S001", "--cache-url", f"{ftp}/cache"]) == 1
    assert f"eqegs: error: cache_url {ftp}/cache: expected its ftp server to answer, found the connection" in (
        one_line(capsys))
    prop = Repository(str(tree), spice_url=f"{ftp}/spice", cache_url=False)[PROPOSAL]
    with pytest.raises(BadInput, match=rf"spice_url {ftp}/spice/proposals/{PROPOSAL}: expected its ftp server"):
        prop.spice
    assert main(["spice", "show", str(tree), PROPOSAL, "--spice-url", f"{ftp}/spice"]) == 1
    assert f"eqegs: error: spice_url {ftp}/spice/" in one_line(capsys)
    assert server.connections >= 4


BLOCK_AIOHTTP = """
import importlib.abc, sys

class NoAiohttp(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "aiohttp":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoAiohttp())
"""


def without_aiohttp(code, *args):
    """Run ``code`` in a Python where ``import aiohttp`` fails (hard time limit 60 s)."""
    return subprocess.run([sys.executable, "-c", BLOCK_AIOHTTP + textwrap.dedent(code), *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)


def test_an_http_url_without_aiohttp_names_the_package_to_install(tree):
    cli = "from eqegs_repo.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"
    for words, where in ((["cook", str(tree), PROPOSAL, "S001", "--cache-url", "http://127.0.0.1:9/cache"],
                          "cache_url http://127.0.0.1:9/cache"),
                         (["spice", "show", str(tree), PROPOSAL, "--spice-url", "http://127.0.0.1:9/spice"],
                          "spice_url http://127.0.0.1:9/spice/"),
                         (["ls", "http://127.0.0.1:9/EQEGS"], "repository URL http://127.0.0.1:9/EQEGS/")):
        done = without_aiohttp(cli, *words)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr[-2000:]
        assert done.stderr.startswith(f"eqegs: error: {where}")
        assert "expected fsspec's http filesystem, found it not installed" in done.stderr
        assert done.stderr.rstrip().endswith("; pip install aiohttp")
    python = without_aiohttp("""
        from eqegs_repo import Repository
        from eqegs_repo.errors import MissingExtra
        try:
            Repository(sys.argv[1], cache_url="http://127.0.0.1:9/cache").cache
        except MissingExtra as exc:
            print(type(exc).__name__, isinstance(exc, ImportError), exc)
    """, str(tree))
    assert python.stdout.startswith("MissingExtra True cache_url http://127.0.0.1:9/cache: expected"), python.stderr
    assert issubclass(MissingExtra, ImportError)


def test_a_url_of_another_machine_in_eqegs_yaml_is_refused_unless_allowed(tree, server, monkeypatch, capsys):
    monkeypatch.delenv(config.ALLOW_REMOTE, raising=False)
    ftp = f"ftp://127.0.0.1:{server.port}"
    for setting, value in (("spice_url", f"{ftp}/spice"), ("cache_url", f"http://127.0.0.1:{server.port}/c"),
                           ("cache_url", f"simplecache::{ftp}/c")):
        (tree / "eqegs.yaml").write_text(f"{setting}: {value}\n")
        with pytest.raises(BadInput, match=rf"eqegs.yaml: {setting}: expected a local folder .* found '{value}', "
                                           r"a URL of the protocol (ftp|http), which reaches another machine"):
            Repository(str(tree))
        assert main(["ls", str(tree), PROPOSAL]) == 1
        assert f"unless you allow it with {config.ALLOW_REMOTE}=1" in one_line(capsys)
    assert server.connections == 0   # nothing connected to the host the file named
    (tree / "eqegs.yaml").write_text("spice_url: memory://here\ncache_url: ../cache\n")   # local: fine
    assert Repository(str(tree)).cache_url == f"{tree.parent}/cache"
    (tree / "eqegs.yaml").write_text(f"spice_url: {ftp}/spice\n")
    monkeypatch.setenv(config.ALLOW_REMOTE, "1")   # the user allows it
    repo = Repository(str(tree), cache_url=False)
    assert repo.spice_url == f"{ftp}/spice"
    with pytest.raises(BadInput, match="expected its ftp server to answer"):
        repo[PROPOSAL].spice
    assert server.connections == 1
