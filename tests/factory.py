"""Build real packages for tests: uploads signed by a real operator key, sealed with real tokens.

`seal_batch` seals packages the way the sealer does (a real development TSA token, a real anchor
transaction on the test session's anvil), without the sealer's store, so verifier tests get
sealed packages fast. End-to-end tests use the real sealer.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anchor.attach import Token, attach
from anchor.devnet import DEV_OPERATOR_KEY, DEVNET_CHAIN_ID
from anchor.ethereum import anchor_root
from anchor.tsa_client import build_request
from anchor.tsa_server import DevTSA
from evidence.operator_key import OperatorKey, load_or_create
from evidence.upload import BuiltPackage, build_upload
from verifier import merkle
from verifier.package import Requester
from verifier.proof import InclusionProof


@dataclass(frozen=True)
class Workspace:
    root: Path
    operator: OperatorKey
    tsa: DevTSA

    @property
    def packages(self) -> Path:
        return self.root / "packages"

    def upload(self, contents: Sequence[tuple[str, bytes]] = (("exhibit.txt", b"infringing copy\n"),)) -> BuiltPackage:
        folder = self.root / "incoming" / secrets.token_hex(4)
        folder.mkdir(parents=True)
        paths = []
        for name, data in contents:
            (folder / name).write_bytes(data)
            paths.append(folder / name)
        return build_upload(paths, packages_dir=self.packages, operator=self.operator,
                            requester=Requester(tenant="acme-rights", identity="counsel@acme.example"))

    def trust_file(self, *, operator: bool = True, tsa: bool = True, chain: bool = True) -> Path:
        lines = []
        if chain:
            lines += ["[[chains]]", f"chain_id = {DEVNET_CHAIN_ID}", 'name = "test devnet"', "confirmations = 1",
                      "development = true", ""]
        if operator:
            lines += ["[[operators]]", 'name = "test operator"',
                      f'public_key = "{self.operator.public_key_b64}"', "development = true", ""]
        if tsa:
            lines += ["[[tsa]]", 'name = "test development TSA"', 'roots = """',
                      self.tsa.ca_certificate_pem().decode().strip(), '"""', "development = true", ""]
        path = self.root / f"trust-{secrets.token_hex(3)}.toml"
        path.write_text("\n".join(lines))
        return path


def make_workspace(root: Path) -> Workspace:
    return Workspace(root=root, operator=load_or_create(root / "keys" / "operator.key"), tsa=DevTSA(root))


def seal_batch(workspace: Workspace, packages: Sequence[BuiltPackage], rpc_url: str,
               batch_id: str = "test-batch") -> bytes:
    """Seal ``packages`` in one batch: a development TSA token and an anchor on ``rpc_url``. Returns the root."""
    leaves = merkle.leaf_hashes([p.fingerprint for p in packages])
    head = merkle.root(leaves)
    response = workspace.tsa.respond(build_request(head, secrets.randbits(63)))
    token = Token(tsa="test development TSA", token=response, chain_pem=workspace.tsa.chain_pem())
    record = anchor_root(rpc_url, DEV_OPERATOR_KEY, head, len(packages), chain_id=DEVNET_CHAIN_ID)
    for index, (package, path) in enumerate(zip(packages, merkle.all_inclusion_proofs(leaves), strict=True)):
        proof = InclusionProof(batch_id=batch_id, leaf=package.fingerprint, leaf_index=index,
                               tree_size=len(packages), inclusion_path=tuple(path), root=head)
        attach(package.path, proof, [token], record)
    return head


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
