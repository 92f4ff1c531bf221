"""The clean-environment record on a hosts file the test controls, for real.

Each capture runs in a child process inside a private mount namespace (``unshare --mount``) where a
temporary hosts file is bind-mounted over /etc/hosts, so the capture tool reads it exactly as it
would read the machine's own. The machine's /etc/hosts is never touched. The child captures the
local test site with the real browser and the real development TSA; the package is then verified
as usual. Skipped with the reason where mount namespaces are not permitted (not root, no unshare).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchor.tsa_server import DevTSA
from evidence.browser import PROXY_VARIABLES
from evidence.environment_check import hosts_record
from evidence.operator_key import OperatorKey
from evidence.signer import FileSigner
from tests.capture_site import Site, member, statuses, verify

ROOT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_SECONDS = 180
STOCK_HOSTS = (f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\n"
               f"ff02::2\tip6-allrouters\n127.0.1.1\t{socket.gethostname()}\n")
PLANTED = "203.0.113.7\tshop.example.com www.shop.example.com\n"
#: Runs in the namespace: bind the hosts file, then capture one URL and print the package path.
CHILD = """
import json, sys
from pathlib import Path
from evidence.capture import CaptureOptions, ClockReferences, capture_urls
from verifier.package import Requester
from evidence.operator_key import load_or_create
url, packages, key, tsa_url, ntp = sys.argv[1:6]
[result] = capture_urls([url], packages_dir=Path(packages), operator=load_or_create(Path(key), "test operator"),
                        requester=Requester("tenant-a", "alice@tenant-a"),
                        options=CaptureOptions(allow_private=True),
                        clock_references=ClockReferences(tsa_url=tsa_url, tsa_name="development TSA",
                                                         ntp_server=ntp or None))
print(json.dumps(result.record()))
"""


def _namespaces_permitted() -> str | None:
    """None when a private mount namespace with a bind mount works here, else why not."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return "needs root and util-linux unshare for a private mount namespace"
    with tempfile.NamedTemporaryFile("w", suffix=".hosts") as probe:
        probe.write(STOCK_HOSTS)
        probe.flush()
        tried = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                f"mount --bind {probe.name} /etc/hosts && cat /etc/hosts"],
                               capture_output=True, text=True, timeout=30, check=False)
    if tried.returncode != 0 or tried.stdout != STOCK_HOSTS:
        return f"a private mount namespace is not permitted here: {tried.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def dev_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = DevTSA(tmp_path_factory.mktemp("tsa")).serve()
    yield server.url
    server.close()


@pytest.fixture(scope="module")
def operator_key_file(operator: OperatorKey) -> Path:
    """The file the operator's key lives in, for the capture child to sign with."""
    assert isinstance(operator.signer, FileSigner)
    return operator.signer.path


def _capture_with_hosts(hosts: str, url: str, folder: Path, key: Path, tsa_url: str, ntp: str = "",
                        extra_env: dict[str, str] | None = None) -> Path:
    reason = _namespaces_permitted()
    if reason:
        pytest.skip(reason)
    hosts_file = folder / "hosts"
    hosts_file.write_text(hosts)
    packages = folder / "packages"
    packages.mkdir()
    # A proxy variable of the machine running the tests would make S4 warn for another reason.
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra_env or {})
    command = 'mount --bind "$0" /etc/hosts && exec "$1" -c "$2" "$3" "$4" "$5" "$6" "$7"'
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", command,
                           str(hosts_file), sys.executable, CHILD, url, str(packages), str(key), tsa_url, ntp],
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "captured", result
    return Path(result["package"])


def _record(package: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(member(package, "evidence/environment-check.json"))


def test_stock_hosts_file_is_clean(http_site: Site, trust: Path, operator_key_file: Path, dev_tsa: str,
                                   chrony: str, tmp_path: Path) -> None:
    package = _capture_with_hosts(STOCK_HOSTS, http_site.url("/dynamic"), tmp_path, operator_key_file, dev_tsa,
                                  chrony)
    record = _record(package)
    assert record["hosts_file"]["non_default"] == [] and record["hosts_file"]["entries"] == 5
    assert record["clock"]["ntp"]["status"] == "measured" and record["clock"]["tsa"]["status"] == "measured"
    report = verify(package, trust)
    s4 = report.result("S4")
    assert s4.status.value == "pass", s4
    for clean in ("hosts file default", "no proxy variables", "against the TSA", "against the NTP server",
                  "egress address 127.0.0.1", "no extensions"):
        assert clean in s4.reason, (clean, s4.reason)
    found = statuses(report)
    assert all(found[i] == "pass" for i in ("S1", "S2", "P1", "P2", "P3", "H1")), report.checks


def test_planted_hosts_entry_makes_s4_warn_and_name_it(http_site: Site, trust: Path, operator_key_file: Path,
                                                       dev_tsa: str, tmp_path: Path) -> None:
    package = _capture_with_hosts(STOCK_HOSTS + PLANTED, http_site.url("/dynamic"), tmp_path, operator_key_file,
                                  dev_tsa)
    record = _record(package)
    assert record["hosts_file"]["non_default"] == [{"address": "203.0.113.7",
                                                    "names": ["shop.example.com", "www.shop.example.com"]}]
    report = verify(package, trust)
    s4 = report.result("S4")
    assert s4.status.value == "warn", s4
    assert "hosts file has 1 non-default entry: 203.0.113.7 shop.example.com www.shop.example.com" in s4.reason
    # Only the environment is in question: the rest of the capture still holds.
    found = statuses(report)
    assert all(found[i] == "pass" for i in ("S1", "S2", "P1", "P2", "P3", "H1")), report.checks


def test_proxy_variable_is_named_without_its_credentials(http_site: Site, trust: Path, operator_key_file: Path,
                                                         dev_tsa: str, tmp_path: Path) -> None:
    proxy = {"HTTPS_PROXY": "http://alice:s3cret-token@10.20.30.40:3128", "no_proxy": "localhost,127.0.0.1"}
    package = _capture_with_hosts(STOCK_HOSTS, http_site.url("/dynamic"), tmp_path, operator_key_file, dev_tsa,
                                  extra_env=proxy)
    raw = member(package, "evidence/environment-check.json")
    assert b"s3cret-token" not in raw and b"alice" not in raw
    assert _record(package)["proxy"]["environment"] == [{"name": "HTTPS_PROXY", "value": "http://10.20.30.40:3128"},
                                                        {"name": "no_proxy", "value": "localhost,127.0.0.1"}]
    s4 = verify(package, trust).result("S4")
    assert s4.status.value == "warn", s4
    assert "proxy variables set in the capture's environment: HTTPS_PROXY=http://10.20.30.40:3128" in s4.reason


def test_default_names_count_only_at_their_default_addresses(tmp_path: Path) -> None:
    """A stock name pointed elsewhere, or a stock line with one more name, is exactly what poisons a capture."""
    hosts = tmp_path / "hosts"
    hosts.write_text(STOCK_HOSTS + "# a comment line\n\n"
                     "10.1.2.3 localhost\n"                    # localhost off loopback
                     "127.0.0.1 localhost shop.example.com\n"  # a stock line with a target name added
                     "::1 ip6-allnodes\n"                      # an ip6 name at the wrong address
                     "fe00::0 ip6-localnet  # stock, with a trailing comment\n")
    record = hosts_record(hosts)
    assert record["entries"] == 9 and record["sha256"] == hashlib.sha256(hosts.read_bytes()).hexdigest()
    assert record["non_default"] == [{"address": "10.1.2.3", "names": ["localhost"]},
                                     {"address": "127.0.0.1", "names": ["localhost", "shop.example.com"]},
                                     {"address": "::1", "names": ["ip6-allnodes"]}]
    assert hosts_record(tmp_path / "absent")["status"] == "unreadable"
