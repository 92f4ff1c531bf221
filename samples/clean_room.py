"""A clean room for a capture whose package is published: nothing of the machine that made it is recorded.

A web capture's clean-environment record holds the hosts file's text, the resolver configuration,
the host name, and the manifest names the interpreter's path. A committed sample made on a build
machine would therefore publish that machine. ``run_in_clean_room`` runs a Python program in a
private mount and UTS namespace (``unshare --mount --uts``) where:

- /etc/hosts is a stock file (``STOCK_HOSTS``, or the text the caller gives, e.g. with a planted entry);
- /etc/resolv.conf names only ``nameserver 127.0.0.1`` and /etc/environment (if any) is empty;
- the host name is ``tiezheng-sample``;
- the interpreter and its packages are bind-mounted under /srv (a tmpfs of the namespace), so the
  recorded executable is a neutral path, not the build machine's home;
- proxy variables are removed from the environment.

Nothing outside the namespace changes: the machine's own files are never touched. Needs root and
util-linux ``unshare``; ``why_not`` says why not where they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOCK_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
STOCK_RESOLV = "nameserver 127.0.0.1\n"
HOSTNAME = "tiezheng-sample"
#: Set in the clean room's environment, so a program can tell it runs there.
MARKER = "TIEZHENG_CLEAN_ROOM"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
#: $1 hosts, $2 resolv.conf, $3 empty file, $4 interpreter prefix, $5 site-packages ('' outside a venv),
#: $6 interpreter name (python3.11), $7 host name; then the program's arguments.
_SETUP = r"""
set -e
mount --bind "$1" /etc/hosts
mount --bind "$2" /etc/resolv.conf
if [ -e /etc/environment ]; then mount --bind "$3" /etc/environment; fi
hostname "$7"
mount -t tmpfs -o mode=755 clean-room /srv
mkdir -p /srv/python
mount --bind "$4" /srv/python
python=/srv/python/bin/$6
if [ -n "$5" ]; then
  lib=/srv/tiezheng/lib/$6/site-packages
  mkdir -p /srv/tiezheng/bin "$lib"
  mount --bind "$5" "$lib"
  printf 'home = /srv/python/bin\ninclude-system-site-packages = false\n' > /srv/tiezheng/pyvenv.cfg
  ln -s "$python" /srv/tiezheng/bin/python
  python=/srv/tiezheng/bin/python
fi
shift 7
exec "$python" "$@"
"""


def why_not() -> str | None:
    """None when a clean room can be made here, else why not."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return "needs root and util-linux unshare for a private mount and UTS namespace"
    tried = subprocess.run(["unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs probe /srv && hostname probe"],
                           capture_output=True, text=True, timeout=30, check=False)
    if tried.returncode != 0:
        return f"a private mount and UTS namespace is not permitted here: {tried.stderr.strip()[:200]}"
    return None


def _site_packages() -> str:
    """The virtual environment's own packages, or '' when the interpreter is not in one."""
    return sysconfig.get_paths()["purelib"] if sys.prefix != sys.base_prefix else ""


def run_in_clean_room(args: Sequence[str], *, hosts: str = STOCK_HOSTS, env: Mapping[str, str] | None = None,
                      timeout: float = 900, capture_output: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` (this interpreter, under a neutral path) in a clean room; the caller checks the result."""
    reason = why_not()
    if reason:
        raise RuntimeError(f"cannot make a clean room: {reason}")
    interpreter = f"python{sys.version_info.major}.{sys.version_info.minor}"
    child_env = {k: v for k, v in (env or os.environ).items() if k.lower() not in PROXY_VARIABLES}
    child_env.update({MARKER: "1", "PYTHONPATH": str(ROOT), "HOSTNAME": HOSTNAME})
    with tempfile.TemporaryDirectory(prefix="tiezheng-clean-room-") as folder:
        files = {"hosts": hosts, "resolv.conf": STOCK_RESOLV, "environment": ""}
        for name, text in files.items():
            (Path(folder) / name).write_text(text)
        return subprocess.run(["unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", _SETUP,
                               "clean-room", *(str(Path(folder) / n) for n in files), sys.base_prefix,
                               _site_packages(), interpreter, HOSTNAME, *args],
                              env=child_env, cwd=ROOT, text=True, timeout=timeout, capture_output=capture_output,
                              check=False)
