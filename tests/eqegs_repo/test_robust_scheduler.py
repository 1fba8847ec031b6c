"""A Dask scheduler address that does not answer as a scheduler: bounded, one line
(docs/robustness.md, issue 20: H5, M12). Hangs are checked in subprocesses with hard time and
memory limits."""
import json
import os
import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from eqegs_repo import BadInput, Repository, batch, scheduler
from eqegs_repo.cli.main import main
from tests.helpers import ROOT
from tests.helpers.treeutil import local_fs, write_tree

pytest.importorskip("distributed")
MEMORY_LIMIT = 4 << 30
"""Bytes of address space a subprocess may use (a regression that reads 3 EiB fails, not the run)."""
HTTP_ANSWER = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Listener:
    """A TCP server on 127.0.0.1 in a thread: ``"silent"`` accepts and never answers,
    ``"http"`` answers like an HTTP server, ``"close"`` closes each connection at once."""

    def __init__(self, kind):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.socket.getsockname()[1]}"
        self.kind, self.held, self.connections = kind, [], 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            if self.kind == "silent":
                self.held.append(connection)
                continue
            if self.kind == "http":
                connection.recv(1024)
                connection.sendall(HTTP_ANSWER)
            connection.close()

    def close(self):
        for connection in self.held:
            connection.close()
        self.socket.close()


@pytest.fixture
def listener(request):
    server = Listener(request.param)
    yield server
    server.close()


@pytest.fixture
def tree(tmp_path):
    write_tree(local_fs(), str(tmp_path), {"2025A1234": ["S001"]})
    return tmp_path


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def isolated(argv, limit):
    """Run ``argv`` in a subprocess with a hard time limit and a memory limit."""
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=limit, preexec_fn=limited)


def eqegs(*words, limit=90):
    """``eqegs WORDS`` in a subprocess with hard time and memory limits; (status, stderr, seconds)."""
    started = time.monotonic()
    done = isolated([sys.executable, "-m", "eqegs_repo", *words], limit)
    return done.returncode, done.stderr, time.monotonic() - started


@pytest.mark.parametrize("listener", ["silent"], indirect=True)
def test_a_scheduler_that_accepts_and_never_answers_is_given_up_after_its_timeout(tree, listener):
    # --export: there is work to do, so reanalyze connects (a cached selection connects nowhere)
    status, err, _ = eqegs("reanalyze", str(tree), "--spice-url", str(tree / "spice"), "--export",
                                 "--scheduler", listener.address, "--scheduler-timeout", "2")
    assert status == 1 and err.count("\n") == 1, err[-2000:]
    assert err == (f"eqegs: error: scheduler {listener.address}: expected a Dask scheduler to answer within 2 s "
                   "(scheduler_timeout, --scheduler-timeout), found no answer (a connection that stays silent, "
                   "or one still being made)\n")
    assert listener.connections >= 1
    # the same from Python, bounded: one BadInput after about scheduler_timeout seconds
    code = textwrap.dedent("""
        import json, sys, time
        from eqegs_repo import BadInput, Repository
        repo = Repository(sys.argv[1], spice_url="memory://", cache_url=False)
        started = time.monotonic()
        try:
            repo.reanalyze(scheduler=sys.argv[2], scheduler_timeout=1.5, export=True, progress=False)
        except BadInput as exc:
            print(json.dumps([str(exc), time.monotonic() - started]))
    """)
    done = isolated([sys.executable, "-c", code, str(tree), listener.address], 60)
    message, seconds = json.loads(done.stdout.splitlines()[-1])
    assert message.startswith(f"scheduler {listener.address}: expected a Dask scheduler to answer within 1.5 s")
    assert 1.4 < seconds < 1.5 + 5 + 1   # the limit, plus at most the handshake thread's grace


def test_the_default_timeout_is_stated_and_bad_ones_are_refused(capsys):
    assert scheduler.SCHEDULER_TIMEOUT == 30.0
    with pytest.raises(SystemExit):
        main(["reanalyze", "--help"])
    assert "--scheduler-timeout SECONDS" in capsys.readouterr().out
    for bad in (0, -1, float("inf"), float("nan"), "5", True):
        with pytest.raises(BadInput, match="scheduler_timeout must be a number of seconds > 0"):
            scheduler.check_timeout(bad)


@pytest.mark.parametrize("address, found", [
    ("localhost:xyz", "found invalid literal for int() with base 10: 'xyz'"),
    ("tcp://127.0.0.1:notaport", "found invalid literal for int()"),
    ("http://127.0.0.1:8787", "found unknown address scheme 'http'"),
    ("tcp://", "found missing port number"),
    ("tcp://127.0.0.1:99999", "found host '127.0.0.1' and port 99999 (a port is 1 to 65535)"),
])
def test_a_malformed_scheduler_address_is_one_line(tree, capsys, address, found):
    assert main(["reanalyze", str(tree), "--spice-url", "memory://", "--export", "--scheduler", address]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"eqegs: error: scheduler {address!r}: expected a Dask scheduler address such as "
                          "tcp://host:8786, ") and found in err
    repo = Repository(str(tree), spice_url="memory://", cache_url=False)
    with pytest.raises(BadInput, match="expected a Dask scheduler address"):
        batch.reanalyze(repo, scheduler=address, export=True)


@pytest.mark.parametrize("listener, found", [
    ("http", "found an answer in another protocol, read as a message too large to hold ("),
    ("close", "found the connection closed without an answer"),
], indirect=["listener"])
def test_an_http_server_or_one_that_closes_is_not_taken_for_a_scheduler(tree, listener, found):
    status, err, _ = eqegs("reanalyze", str(tree), "--spice-url", str(tree / "spice"), "--export",
                           "--scheduler", listener.address, "--scheduler-timeout", "15")  # room on a loaded machine
    assert status == 1 and err.count("\n") == 1 and "Traceback" not in err, err[-2000:]
    assert err.startswith(f"eqegs: error: scheduler {listener.address}: expected a Dask scheduler to answer "
                          "within 15 s") and found in err


def test_a_running_scheduler_is_used_and_let_go(tree):
    distributed = pytest.importorskip("distributed")
    repo = Repository(str(tree), spice_url="memory://", cache_url=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        table = batch.reanalyze(repo, scheduler=cluster.scheduler_address, export=True, progress=False)
        assert list(table["sample"]) == ["S001"] and table["status"].iloc[0] in ("ok", "failed")
        assert len(cluster.scheduler.clients) <= 1   # the reanalysis' client is gone again
    with pytest.raises(BadInput, match="either client .* or scheduler"):
        batch.reanalyze(repo, scheduler="tcp://127.0.0.1:8786", client=object())


def test_a_connection_closed_while_distributed_still_connects_is_named_as_closed():
    """On a loaded machine distributed's connect meets the close itself, retries until the timeout
    and raises "Timed out trying to connect" from the CommClosedError: still a closed connection."""
    from distributed.comm.core import CommClosedError

    try:
        try:
            raise CommClosedError()
        except CommClosedError as closed:
            raise OSError("Timed out trying to connect to tcp://127.0.0.1:1 after 15 s") from closed
    except OSError as exc:
        assert scheduler._found(exc) == "the connection closed without an answer"
    assert scheduler._found(OSError("Timed out trying to connect")).startswith("OSError: Timed out")
