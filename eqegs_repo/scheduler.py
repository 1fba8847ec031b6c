"""Connecting to a running Dask scheduler by its address, within a time limit (docs/reanalysis.md).

``distributed.Client(address)`` waits for the scheduler's first answer without a limit: an
address that accepts connections and never answers (a firewall, a hung process, another
program) hangs it forever, and an HTTP server's answer is read as a Dask message of 3 EiB.
:func:`connect` checks the address, exchanges Dask's handshake on a thread of its own within
``timeout`` seconds and only then opens the client (with the same limit); every failure is one
:class:`~eqegs_repo.errors.BadInput` naming the address, the setting and what was found.
"""
import threading

from eqegs_repo.errors import BadInput, check_seconds, optional_import

SCHEDULER_TIMEOUT = 30.0
"""Seconds to wait for a scheduler to answer: ``scheduler_timeout`` of ``reanalyze``,
``eqegs reanalyze --scheduler-timeout``."""
SETTING = "scheduler_timeout, --scheduler-timeout"
"""How the limit is set, for messages."""


def check_timeout(timeout):
    """``timeout`` (the ``scheduler_timeout`` setting) as float seconds, or BadInput naming it."""
    return check_seconds(timeout, "scheduler_timeout")


def check_address(address):
    """``address`` (``tcp://host:8786``, ``tls://...``, ``host:port`` for tcp, or the
    ``inproc://`` address of a scheduler in this process), or BadInput naming it: a known
    scheme, a host and a port from 1 to 65535. Needs ``distributed``."""
    distributed = optional_import("distributed", "a Dask scheduler")
    expected = "expected a Dask scheduler address such as tcp://host:8786"
    if not isinstance(address, str) or not address.strip():
        raise BadInput(f"scheduler: {expected}, found {address!r}")
    if address.strip().startswith("inproc://"):  # a scheduler in this process (threads)
        return address.strip()
    try:
        host, port = distributed.comm.get_address_host_port(address.strip())
    except (ValueError, TypeError) as exc:
        raise BadInput(f"scheduler {address!r}: {expected}, found {exc}") from None
    if not host or not 0 < int(port) < 65536:
        raise BadInput(f"scheduler {address!r}: {expected}, found host {host!r} and port {port} "
                       "(a port is 1 to 65535)")
    return address.strip()


def _handshake(distributed, address, timeout):
    """The exception of exchanging Dask's handshake with ``address`` within ``timeout`` seconds
    (None when the scheduler answered), on a thread and event loop of its own, so that it works
    where an event loop runs already (Jupyter)."""
    import asyncio

    connection_args = distributed.Security().get_connection_args("client")

    async def exchange():
        comm = await asyncio.wait_for(distributed.comm.connect(address, timeout=timeout, **connection_args),
                                      timeout)
        await comm.close()

    outcome = {}

    def run():
        try:
            asyncio.run(exchange())
        except BaseException as exc:  # noqa: BLE001 - reported by the caller, whatever it is
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"handshake with {address}", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if thread.is_alive():
        return TimeoutError()
    return outcome.get("error")


def _found(exc):
    """What the scheduler's address gave instead of Dask's handshake, in words."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no answer (a connection that stays silent, or one still being made)"
    if isinstance(exc, MemoryError):
        return (f"an answer in another protocol, read as a message too large to hold ({exc}); "
                "an HTTP server such as the dashboard (port 8787)?")
    if "CommClosedError" in (type(exc).__name__, type(exc.__cause__).__name__):
        # closed after the connection was made, or during distributed's connect (which retries
        # until the timeout and then raises "Timed out trying to connect" from it: a loaded machine)
        return "the connection closed without an answer"
    text = " ".join(str(exc).split())
    if exc.__cause__ is not None:  # distributed's "Timed out trying to connect" hides the reason
        text += f" ({type(exc.__cause__).__name__}: {exc.__cause__})"
    text = text if len(text) <= 240 else text[:239] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connect(address, timeout=SCHEDULER_TIMEOUT):
    """A ``distributed.Client`` of the Dask scheduler at ``address``, connected within
    ``timeout`` seconds (:data:`SCHEDULER_TIMEOUT`), or BadInput naming the address, the
    setting and what was found: a malformed address, nothing listening, a silent server, a
    server that closes the connection or answers in another protocol (an HTTP server)."""
    timeout = check_timeout(timeout)
    address = check_address(address)
    distributed = optional_import("distributed", "a Dask scheduler")
    where = f"scheduler {address}"
    expected = f"expected a Dask scheduler to answer within {timeout:g} s ({SETTING})"
    error = _handshake(distributed, address, timeout)
    if error is not None:
        raise BadInput(f"{where}: {expected}, found {_found(error)}")
    try:
        return distributed.Client(address, timeout=timeout)
    except (OSError, ValueError, ImportError) as exc:  # TimeoutError is an OSError
        raise BadInput(f"{where}: {expected}, found {_found(exc)}") from None
