"""The `tiezheng` CLI at its edges, through the installed console script: options, errors, help, progress."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`tiezheng ARGS` with no data dir in the environment: each test says where, on the command line."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIEZHENG_")}
    result = subprocess.run([str(BIN / "tiezheng"), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                            env={**base, "COLUMNS": "200", **(env or {})})
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The command failed with exit code 2 and exactly one line on stderr holding ``expected``."""
    line = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "\n" not in line and line.startswith("error: "), line
    assert "internal error" not in line and "OperationalError" not in line, line
    for text in expected:
        assert text in line, (text, line)
    return line


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """A data dir holding one pending upload."""
    exhibit = tmp_path / "exhibit.txt"
    exhibit.write_text("the infringing copy\n")
    folder = tmp_path / "data"
    assert run("upload", exhibit, "--data-dir", folder).returncode == 0
    return folder


def test_global_options_before_or_after_the_command(tmp_path: Path, data_dir: Path) -> None:
    typo = tmp_path / "typo"
    for argv in (["--data-dir", typo, "status"], ["status", "--data-dir", typo],
                 ["--json", "--data-dir", typo, "status"], ["--data-dir", typo, "keys", "list", "acme"],
                 ["--data-dir", typo, "tenants", "list"]):
        one_line_error(run(*argv), f"no data dir at {typo}", "--data-dir")
    assert not typo.exists()  # read-only commands never create a data dir

    before = json.loads(run("--json", "--data-dir", data_dir, "status").stdout)
    after = json.loads(run("status", "--json", "--data-dir", data_dir).stdout)
    mixed = json.loads(run("--data-dir", data_dir, "status", "--json").stdout)
    assert before == after == mixed and before["items"] == {"pending": 1}
    assert run("--data-dir", data_dir, "status").stdout.strip() == "items: pending 1"
    assert run("--data-dir", typo, "status", "--data-dir", data_dir).returncode == 0  # the later one counts
    chain = json.loads(run("--data-dir", data_dir, "--json", "chain", "status").stdout)
    assert chain["rpc_url"] is None  # nested commands take them too
    exhibit = tmp_path / "second.txt"
    exhibit.write_text("another exhibit")
    uploaded = json.loads(run("--json", "--data-dir", data_dir, "upload", exhibit).stdout)
    assert uploaded["status"] == "pending" and Path(uploaded["package"]).parent == data_dir / "packages"


def test_user_errors_are_one_line_with_a_hint(tmp_path: Path, data_dir: Path) -> None:
    typo = tmp_path / "no-such-dir"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    cases = [
        (["capture", "example.com"], ["'example.com' has no scheme", "did you mean https://example.com?"]),
        (["capture", "example.com/path?q=1"], ["did you mean https://example.com/path?q=1?"]),
        (["capture", "--file", tmp_path / "nope.txt"], ["no such URL file", "nope.txt", "check the path"]),
        (["capture", "--file", folder], ["is a folder, not a URL file"]),
        (["capture", "https://example.com", "--wait", "soon"], ["--wait must be", "tiezheng capture --help"]),
        (["upload", tmp_path / "nope.pdf"], ["no such file", "nope.pdf"]),
        (["upload", folder], ["is a folder, not a file", "give a file inside it"]),
        (["verify", tmp_path / "nope.wacz"], ["no such package"]),
        (["verify", folder, "--data-dir", data_dir], ["is a folder, not a package"]),
        (["trust", "export", folder, "--data-dir", data_dir], ["is a folder", "trust.toml"]),
        (["status", "--data-dir", typo], ["no data dir at"]),
        (["verify", REPO / "samples" / "packages" / "good-upload.wacz", "--data-dir", typo], ["no data dir at"]),
        (["trust", "export", tmp_path / "t.toml", "--data-dir", typo], ["no data dir at"]),
        (["keys", "list", "acme", "--data-dir", typo], ["no data dir at"]),
        (["keys", "create", "acme", "--data-dir", typo], ["no data dir at"]),
        (["status", "--data-dir", folder], ["holds no Tiezheng database"]),
        (["status", "--bogus"], ["No such option: --bogus", "see `tiezheng status --help`"]),
        (["capture", "https://example.com", "--concurrency", "many"], ["'--concurrency'", "tiezheng capture --help"]),
        (["upload"], ["Missing argument 'FILES...'"]),
        (["bogus"], ["No such command 'bogus'", "see `tiezheng --help`"]),
    ]
    for argv, expected in cases:
        one_line_error(run(*argv, "--data-dir", data_dir) if "--data-dir" not in argv else run(*argv), *expected)
    assert not typo.exists() and list(folder.iterdir()) == []


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -rm` (user namespaces) to mount a small tmpfs")
@pytest.mark.parametrize(("mount", "expected"), [
    ("-o size=64k", ["free some space, or give another --data-dir"]),
    ("-o ro", ["read-only", "check its permissions, or give another --data-dir"]),
])
def test_full_or_read_only_data_dir(tmp_path: Path, mount: str, expected: list[str]) -> None:
    """A private mount (user namespace) of a tiny or read-only tmpfs, as a data dir's disk."""
    exhibit = tmp_path / "exhibit.bin"
    exhibit.write_bytes(os.urandom(200_000))
    disk = tmp_path / "disk"
    disk.mkdir()
    for command in (["upload", exhibit], ["tenants", "create", "acme"]):
        script = (f"mount -t tmpfs {mount} tmpfs {shlex.quote(str(disk))} && exec "
                  + shlex.join([str(BIN / "tiezheng"), *map(str, command), "--data-dir", str(disk / "data")]))
        result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "COLUMNS": "200"})
        assert "Traceback" not in result.stderr, result.stderr
        one_line_error(result, *expected)


HELP_COMMANDS = [[], ["capture"], ["upload"], ["seal"], ["status"], ["verify"], ["demo"], ["serve"], ["doctor"],
                 ["chain", "up"], ["chain", "down"], ["chain", "status"], ["tsa", "serve"], ["trust", "export"],
                 ["tenants", "create"], ["tenants", "list"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"],
                 ["worker", "capture"], ["worker", "seal"], ["worker", "log"], ["worker", "schedule"],
                 ["matter", "create"],
                 ["matter", "list"], ["matter", "show"], ["watch", "add"], ["watch", "list"], ["watch", "pause"],
                 ["watch", "resume"], ["watch", "remove"], ["watch", "run-due"]]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "tiezheng")
def test_help_shows_real_types_and_defaults(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert not re.search(r"<(bool|str|int|float|path|Path|list\[[^>]*)>", text), text
    assert not re.search(r"\w \.\s", text) and "[default: ]" not in text, text  # no "Port ." left by a lost default
    assert "--data-dir" in text and "FOLDER" in text and "~/.tiezheng" in text
    if command == ["serve"]:
        assert re.search(r"--port\s+INTEGER\s+Port to listen on \(default: \$TIEZHENG_PORT, else 8000\)", text), text
        assert "else 127.0.0.1" in text
    if command == ["capture"]:
        assert "--allow-private" in text and "--no-allow-private" not in text
        assert re.search(r"--concurrency\s+INTEGER.*\[default: 2\]", text), text


def _timed_stderr(argv: list[str | Path]) -> tuple[list[tuple[float, str]], int]:
    """Run with a terminal-like stderr; return (seconds since start, text) for each chunk it wrote."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIEZHENG_")}
    env.update({"TTY_COMPATIBLE": "1", "FORCE_COLOR": "1", "COLUMNS": "200"})
    started = time.monotonic()
    process = subprocess.Popen([str(BIN / "tiezheng"), *map(str, argv)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    chunks = []
    while chunk := process.stderr.read1(65536):
        chunks.append((time.monotonic() - started, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", chunk.decode())))
    return chunks, process.wait(120)


def _first(chunks: list[tuple[float, str]], text: str) -> float:
    return next(at for at, chunk in chunks if text in chunk)


@pytest.mark.usefixtures("anvil")
def test_progress_names_the_step_at_once(tmp_path: Path, data_dir: Path) -> None:
    try:
        chunks, code = _timed_stderr(["seal", "--data-dir", data_dir])
        assert code == 0, chunks
        steps = ["loading the sealing tools", "starting the timestamp authority and the devnet", "sealing 1 item(s)"]
        times = [_first(chunks, step) for step in steps]
        assert times == sorted(times)
        # Shown at once: the first step is up long before the devnet and TSA are, not after them.
        assert times[0] < 5.0 and times[0] < chunks[-1][0] / 2, chunks[:3]

        chunks, code = _timed_stderr(["capture", "http://127.0.0.1:9/", "--allow-private", "--data-dir", data_dir])
        assert code == 1
        assert _first(chunks, "starting the browser") < _first(chunks, "capturing") < _first(chunks, "failed")
    finally:
        run("chain", "down", "--data-dir", data_dir)


@pytest.mark.slow
def test_minimal_install_names_the_extra(tmp_path: Path) -> None:
    """Counsel's `pip install .` (no extras) also ships `tiezheng`: it must say which extra to install."""
    venv.EnvBuilder(with_pip=True).create(tmp_path / "plain")
    bin_dir = tmp_path / "plain" / "bin"
    subprocess.run([str(bin_dir / "pip"), "install", "-q", str(REPO)], check=True, capture_output=True, timeout=900)
    assert subprocess.run([str(bin_dir / "python"), "-c", "import typer"], capture_output=True).returncode != 0
    for argv in ([], ["--help"], ["status"], ["capture", "https://example.com"]):
        result = subprocess.run([str(bin_dir / "tiezheng"), *argv], capture_output=True, text=True, timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        one_line_error(result, "pip install 'tiezheng[api]'", "tiezheng-verify works without it")
