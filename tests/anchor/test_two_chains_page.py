"""The in-browser verifier on a package anchored on two chains: it agrees with tiezheng-verify.

The page judges proof/anchor.json (the first chain's anchor) and accepts proof/anchor-<chain_id>.json
as a sealing file; tiezheng-verify judges both. Under a one-chain policy both say the same.
"""

from __future__ import annotations

from typing import Any

from anchor.devnet import Devnet
from anchor.tsa_server import TSAServer
from tests.anchor.test_sealer import accept
from tests.anchor.test_two_chains import SECOND, names, second_devnet, served_tsa, trust, two_chain_sealer
from tests.factory import Workspace
from tests.verifier.browser_page import built_page, open_page
from tests.verifier.test_browser_parity import cli_report, mismatches

__all__ = ["second_devnet", "served_tsa"]  # fixtures, imported for pytest


def test_page_agrees_on_a_two_chain_package(chromium: Any, workspace: Workspace, served_tsa: TSAServer,
                                             devnet: Devnet, second_devnet: Devnet) -> None:
    sealer = two_chain_sealer(workspace, served_tsa.url, devnet.rpc_url, second_devnet.rpc_url)
    [package] = accept(sealer, workspace, 1)
    sealer.run_once(force=True)
    assert names(package) == {"proof/anchor.json", SECOND}
    trust_file, _ = trust(workspace, min_chains=1)
    page = open_page(chromium, built_page().as_uri())
    cli = cli_report(package, trust_file)
    seen = page.verify(package, trust_file)
    assert mismatches("two chains", cli, seen) == []
    assert cli[0] == "verified (offline)" and cli[1]["P3"] == "pass" and cli[1]["H5"] == "warn"

