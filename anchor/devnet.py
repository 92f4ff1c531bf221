"""The embedded devnet: an anvil node started by the tool, its state kept in the data dir.

anvil is a real JSON-RPC Ethereum node, so everything that anchors here would anchor the same way
on Sepolia. Its chain lives in ``data_dir/chain/state.json``: anvil loads it on start, rewrites it
every ``STATE_INTERVAL_SECONDS`` and dumps it on SIGTERM, so blocks survive a restart.
``data_dir/chain/devnet.json`` names the running node (pid, port, RPC URL) so that another process
can find it and stop it.

The devnet is development trust only: chain id 31337 and the operator key below are public.
``tiezheng chain up --second`` starts a second one, chain id 31338, in ``data_dir/chain2``, so that
anchoring on two chains can be tried without any real chain.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from verifier.errors import TiezhengError

DEVNET_CHAIN_ID = 31337
#: The second embedded devnet: another chain id, its own folder in the data dir.
SECOND_DEVNET_CHAIN_ID = 31338
SECOND_DEVNET_DIR = "chain2"
#: Chains that are anvil devnets we start: they mine only on demand (see anchor.ethereum).
DEVNET_CHAIN_IDS = frozenset({DEVNET_CHAIN_ID, SECOND_DEVNET_CHAIN_ID})
#: The first of anvil's default dev accounts (mnemonic "test test ... junk"). It is published in
#: anvil's and Hardhat's docs and funded on every devnet: a well-known test key, never a secret,
#: and worthless on any real chain.
DEV_OPERATOR_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_OPERATOR_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

ANVIL_ENV = "TIEZHENG_ANVIL"
#: Where `npm ci` (run by `make setup`) puts the binary, relative to the repository root.
ANVIL_NPM_PATH = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
HOST = "127.0.0.1"
#: anvil persists its state this often (seconds) besides on exit, so a SIGKILL loses at most this much.
STATE_INTERVAL_SECONDS = 1
START_TIMEOUT_SECONDS = 20.0
#: anvil writes its state on SIGTERM; a long chain takes a moment to serialise.
STOP_TIMEOUT_SECONDS = 10.0
KILL_TIMEOUT_SECONDS = 5.0
POLL_SECONDS = 0.05
RPC_TIMEOUT_SECONDS = 2.0
#: Another program may grab the free port between our probe and anvil's bind; try a few ports.
PORT_ATTEMPTS = 3

_REPO_ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


class DevnetError(TiezhengError):
    """The devnet cannot be found, started, reached or stopped."""


class AnvilNotFound(DevnetError):
    """No anvil binary is available."""


@dataclass(frozen=True)
class DevnetStatus:
    """What ``Devnet.status()`` reports. ``block`` is None when the node does not answer."""

    running: bool
    pid: int | None
    rpc_url: str | None
    chain_id: int | None
    block: int | None


def find_anvil() -> Path:
    """Return the anvil binary to run.

    Order: ``$TIEZHENG_ANVIL``, then the npm-installed binary under the repository root, then
    ``anvil`` on PATH. Raises AnvilNotFound when none exists; a set but broken
    ``$TIEZHENG_ANVIL`` is an error, not a reason to silently run another anvil.
    """
    configured = os.environ.get(ANVIL_ENV)
    if configured:
        path = Path(configured)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise AnvilNotFound(f"${ANVIL_ENV} is set to {configured!r}, which is not an executable file")
    bundled = _REPO_ROOT / ANVIL_NPM_PATH
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilNotFound(
        f"anvil not found: run `make setup` (installs it with npm into {ANVIL_NPM_PATH}), "
        f"put anvil on PATH, or set ${ANVIL_ENV}"
    )


def rpc_call(
    rpc_url: str, method: str, params: list[Any] | None = None, *, timeout: float = RPC_TIMEOUT_SECONDS
) -> Any:
    """Make one JSON-RPC call with the standard library and return its ``result``.

    Raises OSError (incl. URLError) when the node cannot be reached, DevnetError on a JSON-RPC error.
    """
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    if not rpc_url.startswith(("http://", "https://")):
        raise ValueError(f"RPC URL must be http:// or https://, not {rpc_url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        rpc_url, data=payload, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - scheme checked above
        answer = json.loads(reply.read())
    if "error" in answer:
        raise DevnetError(f"{method} failed: {answer['error']}")
    return answer.get("result")


class Devnet:
    """The anvil devnet of one data dir. Usable as a context manager (start/stop)."""

    @classmethod
    def second(cls, data_dir: Path, **options: Any) -> Devnet:
        """The data dir's second devnet (``tiezheng chain up --second``)."""
        return cls(data_dir, chain_id=SECOND_DEVNET_CHAIN_ID, folder=SECOND_DEVNET_DIR, **options)

    def __init__(self, data_dir: Path, *, anvil: Path | None = None, die_with_parent: bool = False,
                 chain_id: int = DEVNET_CHAIN_ID, folder: str = "chain") -> None:
        """``die_with_parent`` (Linux) sends anvil SIGTERM when the starting thread's process dies,
        so a killed test run leaves no node behind; by default the devnet outlives its starter.
        ``chain_id`` and ``folder`` (under ``data_dir``) tell several devnets of one data dir apart."""
        # Absolute, because the path is also how we recognise our anvil among running processes.
        self.chain_id = chain_id
        self.chain_dir = Path(data_dir).resolve() / folder
        self.state_file = self.chain_dir / "state.json"
        self.info_file = self.chain_dir / "devnet.json"
        self.log_file = self.chain_dir / "anvil.log"
        self._anvil = anvil
        self._process: subprocess.Popen[bytes] | None = None
        self._die_with_parent = die_with_parent

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, *, owner_pid: int | None = None) -> str:
        """Start anvil unless this data dir's devnet already runs, and return its RPC URL.

        ``owner_pid`` names the process that will stop the devnet when it exits (None: it is kept
        running, as `tiezheng chain up` wants). A running devnet whose owner died without stopping
        it (killed) passes to the new owner, so the next command that stops on exit cleans it up.
        Waits until ``eth_chainId`` answers. Raises AnvilNotFound, or DevnetError when anvil
        exits or stays silent for ``START_TIMEOUT_SECONDS``.
        """
        running = self._running_info()
        if running is not None:
            previous = running.get("owner_pid")
            if owner_pid is not None and isinstance(previous, int) and not _is_alive(previous):
                _write_json_atomic(self.info_file, {**running, "owner_pid": owner_pid})
            return str(running["rpc_url"])
        anvil = self._anvil or find_anvil()
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        problem = "no attempt made"
        for _ in range(PORT_ATTEMPTS):
            port = _free_port()
            process = self._launch(anvil, port)
            rpc_url = f"http://{HOST}:{port}"
            problem = self._wait_ready(process, rpc_url)
            if not problem:
                self._process = process
                _write_json_atomic(
                    self.info_file,
                    {
                        "pid": process.pid,
                        "port": port,
                        "rpc_url": rpc_url,
                        "chain_id": self.chain_id,
                        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "owner_pid": owner_pid,
                    },
                )
                return rpc_url
            _terminate(process.pid, process)
        raise DevnetError(f"anvil did not start: {problem}; see {self.log_file}")

    def _launch(self, anvil: Path, port: int) -> subprocess.Popen[bytes]:
        command = [
            str(anvil),
            "--host", HOST,
            "--port", str(port),
            "--chain-id", str(self.chain_id),
            "--state", str(self.state_file),
            "--state-interval", str(STATE_INTERVAL_SECONDS),
            "--silent",
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            # A session of its own: Ctrl-C in the terminal reaches us, and we stop anvil with
            # SIGTERM so that it writes its state, instead of it dying mid-write with us.
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_parent_death_signal() if self._die_with_parent else None,
            )

    def _wait_ready(self, process: subprocess.Popen[bytes], rpc_url: str) -> str:
        """Return "" once the node answers with our chain id, else what went wrong."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return f"anvil exited with status {process.returncode}"
            try:
                chain_id = int(rpc_call(rpc_url, "eth_chainId", timeout=RPC_TIMEOUT_SECONDS), 16)
            except (OSError, ValueError, DevnetError):
                time.sleep(POLL_SECONDS)
                continue
            if chain_id != self.chain_id:
                return f"the node on {rpc_url} reports chain id {chain_id}, not {self.chain_id}"
            return ""
        return f"no answer to eth_chainId within {START_TIMEOUT_SECONDS} s"

    def stop(self) -> bool:
        """Stop this data dir's devnet, whichever process started it.

        Sends SIGTERM so anvil dumps its state, then SIGKILL after ``STOP_TIMEOUT_SECONDS``.
        Returns True if a node was stopped, False if none was running.
        """
        info = self._read_info()
        stopped = False
        if info is not None and _is_our_anvil(info["pid"], info["port"], self.state_file):
            own = self._process if self._process is not None and self._process.pid == info["pid"] else None
            _terminate(info["pid"], own)
            stopped = True
        elif self._process is not None and self._process.poll() is None:
            _terminate(self._process.pid, self._process)
            stopped = True
        self._process = None
        self.info_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> DevnetStatus:
        """Return whether the devnet runs, where, and its latest block number."""
        info = self._running_info()
        if info is None:
            return DevnetStatus(running=False, pid=None, rpc_url=None, chain_id=None, block=None)
        rpc_url = str(info["rpc_url"])
        try:
            block: int | None = int(rpc_call(rpc_url, "eth_blockNumber"), 16)
        except (OSError, ValueError, DevnetError):
            block = None
        return DevnetStatus(running=True, pid=info["pid"], rpc_url=rpc_url, chain_id=info["chain_id"], block=block)

    def owner_pid(self) -> int | None:
        """The process that stops the running devnet when it exits; None when it is kept running."""
        info = self._running_info()
        owner = info.get("owner_pid") if info is not None else None
        return owner if isinstance(owner, int) else None

    @property
    def rpc_url(self) -> str:
        """The RPC URL of the running devnet. Raises DevnetError when it is not running."""
        info = self._running_info()
        if info is None:
            raise DevnetError(f"the devnet of {self.chain_dir.parent} is not running")
        return str(info["rpc_url"])

    def __enter__(self) -> Devnet:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- bookkeeping -------------------------------------------------------------------------------

    def _read_info(self) -> dict[str, Any] | None:
        """devnet.json if it is readable and well-formed, else None (a stale or torn file is ignored)."""
        try:
            info = json.loads(self.info_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict):
            return None
        expected = {"pid": int, "port": int, "rpc_url": str, "chain_id": int}
        if not all(isinstance(info.get(key), kind) for key, kind in expected.items()):
            return None
        return info

    def _running_info(self) -> dict[str, Any] | None:
        """devnet.json if the process it names is alive and still our anvil, else None."""
        info = self._read_info()
        if info is not None and _is_our_anvil(info["pid"], info["port"], self.state_file):
            return info
        return None


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when its parent dies (PR_SET_PDEATHSIG).

    libc is loaded here, in the parent: between fork and exec the child must only make the
    syscall, not run the dynamic loader. Returns None where prctl does not exist (not Linux).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie has exited; it only waits for its parent to reap it.
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split()[1]
    except OSError:
        pass
    return True


def _is_our_anvil(pid: int, port: int, state_file: Path) -> bool:
    """True if ``pid`` runs anvil on ``port`` with ``state_file``: a recycled pid must never get our SIGTERM."""
    if pid <= 0 or not _is_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        # No /proc (not Linux): fall back to asking the port whether a devnet answers there.
        try:
            return int(rpc_call(f"http://{HOST}:{port}", "eth_chainId"), 16) in DEVNET_CHAIN_IDS
        except (OSError, ValueError, DevnetError):
            return False
    return str(port).encode() in argv and str(state_file).encode() in argv


def _terminate(pid: int, process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, wait, then SIGKILL. ``process`` is given when we are the parent and must reap it."""
    for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT_SECONDS), (signal.SIGKILL, KILL_TIMEOUT_SECONDS)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if process is not None:
            try:
                process.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _is_alive(pid):
            time.sleep(POLL_SECONDS)
        if not _is_alive(pid):
            return
    if process is not None:
        process.poll()


def _write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(temporary, temporary.with_name(path.name))
