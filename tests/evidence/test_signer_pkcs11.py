"""The PKCS#11 signer against a real SoftHSM2 token: an Ed25519 key made inside the token, never exported,
signs real packages that `tiezheng-verify` accepts with the trust `tiezheng trust export` writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence.operator_key import OperatorKey
from evidence.signer import Pkcs11Config, Pkcs11Signer, SignerError, generate_token_key
from evidence.upload import build_upload
from tests.api.test_cli import BIN, tiezheng
from tests.softhsm import make_token, softhsm_conf, softhsm_module, token_env
from verifier.package import Requester
from verifier.signature import key_id

pkcs11 = pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed (the hsm extra)")

TOKEN = "tiezheng-test"
KEY = "operator-ed25519"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Config]:
    """A fresh SoftHSM2 token in a private folder (SOFTHSM2_CONF), holding an Ed25519 key made inside it."""
    module = softhsm_module()
    if module is None:
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2)")
    before = os.environ.get("SOFTHSM2_CONF")
    # The module reads it when loaded; child processes (the CLI, the server) inherit it.
    os.environ["SOFTHSM2_CONF"] = str(softhsm_conf(tmp_path_factory.mktemp("softhsm")))
    yield make_token(module, TOKEN, KEY)
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


def test_private_key_was_made_in_the_token_and_cannot_leave(token: Pkcs11Config) -> None:
    Pkcs11Signer(token).public_key()  # the process logs in once; sessions opened after share that login
    lib = pkcs11.lib(str(token.module))
    with lib.get_token(token_label=TOKEN).open() as session:
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=KEY)
        attribute = pkcs11.Attribute
        assert private.key_type == pkcs11.KeyType.EC_EDWARDS
        assert private[attribute.SENSITIVE] and not private[attribute.EXTRACTABLE]
        # Only a key generated inside the token has been sensitive and unextractable all its life.
        assert private[attribute.ALWAYS_SENSITIVE] and private[attribute.NEVER_EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[attribute.VALUE]


def test_signatures_verify_and_the_key_id_is_the_public_keys(token: Pkcs11Config) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signer = Pkcs11Signer(token)
    public = signer.public_key()
    assert len(public) == 32 and signer.key_id == key_id(public) and signer.backend == "pkcs11"
    for message in (b"", b"manifest", os.urandom(4096)):
        Ed25519PublicKey.from_public_bytes(public).verify(signer.sign(message), message)
    assert token.pin not in repr(token) and token.pin not in signer.location


def test_a_forked_worker_logs_in_again_and_signs(token: Pkcs11Config) -> None:
    signer = Pkcs11Signer(token)
    signer.sign(b"parent")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, signer.sign(b"child"))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        signature = pipe.read()
    os.waitpid(child, 0)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(signer.public_key()).verify(signature, b"child")
    signer.sign(b"parent again")


@pytest.mark.parametrize(("change", "message"), [
    ({"pin": "0000"}, f"token .{TOKEN}. (refused the PIN|is logged in with another PIN)"),
    ({"token_label": "absent"}, "no PKCS#11 token labelled 'absent'"),
    ({"key_label": "absent"}, "has no Ed25519 private key labelled 'absent'"),
    ({"module": Path("/nonexistent/libpkcs11.so")}, "cannot load the PKCS#11 module"),
])
def test_misconfiguration_is_one_clear_line(token: Pkcs11Config, change: dict[str, object], message: str) -> None:
    config = Pkcs11Config(**{"module": token.module, "token_label": TOKEN, "key_label": KEY, "pin": token.pin,
                             **change})  # type: ignore[arg-type]
    with pytest.raises(SignerError, match=message) as raised:
        Pkcs11Signer(config).sign(b"x")
    assert "\n" not in str(raised.value) and token.pin not in str(raised.value)


def test_a_taken_label_is_not_generated_twice(token: Pkcs11Config) -> None:
    with pytest.raises(SignerError, match="already exists"):
        generate_token_key(token)


def test_upload_built_in_process_is_signed_by_the_token(token: Pkcs11Config, workspace) -> None:  # type: ignore[no-untyped-def]
    from verifier.package import open_package
    from verifier.signature import parse_signature, verify_signature

    operator = OperatorKey("token operator", Pkcs11Signer(token))
    exhibit = workspace.root / "exhibit.txt"
    exhibit.write_bytes(b"infringing copy\n")
    built = build_upload([exhibit], packages_dir=workspace.packages, operator=operator,
                         requester=Requester(tenant="acme-rights", identity="counsel@acme.example"))
    package = open_package(built.path)
    assert package.signature is not None
    verify_signature(parse_signature(package.signature), package.manifest_bytes, operator.public_key_raw)
    assert json.loads(package.manifest_bytes)["operator"]["key_id"] == operator.key_id


def test_cli_upload_seal_and_verify_with_exported_trust(token: Pkcs11Config, tmp_path: Path, anvil: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in token_env(token).items():
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "data"
    try:
        exhibits = []
        for index in range(2):
            exhibits.append(tmp_path / f"exhibit {index}.txt")
            exhibits[-1].write_bytes(f"listing {index}\n".encode())
        uploaded = [json.loads(tiezheng(data_dir, "upload", exhibit, "--json").stdout) for exhibit in exhibits]
        # No key file appears: the data dir holds nothing secret.
        assert not (data_dir / "keys" / "operator.key").exists()
        sealed = [json.loads(line) for line in tiezheng(data_dir, "seal", "--json").stdout.splitlines()]
        assert {s["evidence_id"] for s in sealed} == {u["evidence_id"] for u in uploaded}

        trust = tmp_path / "trust.toml"
        tiezheng(data_dir, "trust", "export", trust)
        public = Pkcs11Signer(token).public_key()
        import base64

        assert base64.b64encode(public).decode() in trust.read_text()
        for item in uploaded:
            counsel = subprocess.run([str(BIN / "tiezheng-verify"), item["package"], "--trust", str(trust), "--json"],
                                     capture_output=True, text=True, timeout=120)
            assert counsel.returncode == 0, counsel.stdout + counsel.stderr
            s1 = next(c for c in json.loads(counsel.stdout)["checks"] if c["id"] == "S1")
            assert s1["status"] == "pass" and key_id(public)[:16] in s1["reason"]
    finally:
        tiezheng(data_dir, "chain", "down", check=False)


def test_doctor_names_the_backend_and_key_never_the_pin(token: Pkcs11Config, tmp_path: Path) -> None:
    env = {**os.environ, **token_env(token), "TIEZHENG_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([str(BIN / "tiezheng"), "doctor", "--json", "--no-seal"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert token.pin not in done.stdout + done.stderr
    check = next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "operator_key")
    assert check["status"] == "ok", check
    assert check["reason"].startswith("pkcs11 signer: key " + Pkcs11Signer(token).key_id)
    assert TOKEN in check["reason"]

    wrong = subprocess.run([str(BIN / "tiezheng"), "doctor", "--json", "--no-seal"], capture_output=True, text=True,
                           env={**env, "TIEZHENG_PKCS11_PIN": "wrong-pin-1234"}, timeout=120)
    check = next(c for c in json.loads(wrong.stdout)["checks"] if c["name"] == "operator_key")
    assert check["status"] == "fail" and "refused the PIN" in check["reason"]
    assert "wrong-pin-1234" not in wrong.stdout + wrong.stderr

    unset = subprocess.run([str(BIN / "tiezheng"), "doctor", "--json", "--no-seal"], capture_output=True, text=True,
                           env={**env, "TIEZHENG_PKCS11_KEY_LABEL": ""}, timeout=120)
    check = next(c for c in json.loads(unset.stdout)["checks"] if c["name"] == "operator_key")
    assert check["status"] == "fail" and "needs TIEZHENG_PKCS11_KEY_LABEL" in check["reason"]


def test_a_key_made_with_opensc_pkcs11_tool_signs_too(token: Pkcs11Config) -> None:
    """The README's way to make the key on a token: OpenSC's pkcs11-tool (EC_PARAMS as the name
    "edwards25519", where python-pkcs11 gives the OID)."""
    if shutil.which("pkcs11-tool") is None:
        pytest.skip("OpenSC's pkcs11-tool is not installed (Debian package opensc)")
    label = "made-by-pkcs11-tool"
    made = subprocess.run(["pkcs11-tool", "--module", str(token.module), "--token-label", TOKEN, "--login",
                           "--pin", token.pin, "--keypairgen", "--key-type", "EC:edwards25519", "--label", label,
                           "--usage-sign"], capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    assert "never extractable" in made.stdout
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signer = Pkcs11Signer(Pkcs11Config(module=token.module, token_label=TOKEN, key_label=label, pin=token.pin))
    Ed25519PublicKey.from_public_bytes(signer.public_key()).verify(signer.sign(b"manifest"), b"manifest")
    assert signer.public_key() != Pkcs11Signer(token).public_key()


def test_service_signs_uploads_with_the_token(token: Pkcs11Config, tmp_path: Path, anvil: Path) -> None:
    """`tiezheng serve` with the token: an upload over HTTP is sealed, downloaded, and verified by counsel
    with the trust exported from the same token; a wrong PIN stops the server at start with one line."""
    from tests.api.conftest import start_server
    from tests.api.server import Server, wait_for_status

    wrong = Server(data_dir=tmp_path / "refused",
                   extra_env={**token_env(token), "TIEZHENG_PKCS11_PIN": "wrong-pin-9876"})
    with pytest.raises(RuntimeError, match="refused the PIN") as refused:
        wrong.start()
    assert "wrong-pin-9876" not in str(refused.value) and "Traceback" not in str(refused.value)

    servers = start_server(tmp_path, "sqlite", **token_env(token))
    server = next(servers)
    try:
        tenant = server.new_tenant()
        with server.client(tenant["api_key"]) as client:
            reply = client.post("/v1/uploads", files={"file": ("listing.txt", b"infringing listing\n")})
            assert reply.status_code == 202, reply.text
            sealed = wait_for_status(client, reply.json()["evidence_ids"][0], {"sealed", "failed"})
            assert sealed["status"] == "sealed", sealed
            package = tmp_path / "downloaded.wacz"
            package.write_bytes(client.get(f"/v1/evidence/{sealed['id']}/package").content)
        assert not (server.data_dir / "keys" / "operator.key").exists()
        trust = tmp_path / "trust.toml"
        server.cli("trust", "export", str(trust))
        counsel = subprocess.run([str(BIN / "tiezheng-verify"), str(package), "--trust", str(trust), "--json"],
                                 capture_output=True, text=True, timeout=120)
        assert counsel.returncode == 0, counsel.stdout + counsel.stderr
        s1 = next(c for c in json.loads(counsel.stdout)["checks"] if c["id"] == "S1")
        assert s1["status"] == "pass" and Pkcs11Signer(token).key_id[:16] in s1["reason"]
        assert token.pin not in server.log()
    finally:
        servers.close()


@pytest.mark.parametrize("command", [("worker", "capture"), ("upload", "--json")])
def test_a_wrong_pin_stops_other_processes_with_one_line(token: Pkcs11Config, tmp_path: Path,
                                                         command: tuple[str, ...]) -> None:
    exhibit = tmp_path / "exhibit.txt"
    exhibit.write_bytes(b"x")
    args = [*command, str(exhibit)] if command[0] == "upload" else list(command)
    env = {**os.environ, **token_env(token), "TIEZHENG_PKCS11_PIN": "wrong-pin-5555",
           "TIEZHENG_DATA_DIR": str(tmp_path / "data"), "TIEZHENG_REDIS_URL": "redis://127.0.0.1:9/0"}
    done = subprocess.run([str(BIN / "tiezheng"), *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().count("\n") == 0 and "refused the PIN" in done.stderr
    assert "wrong-pin-5555" not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_a_web_capture_is_signed_by_the_token(token: Pkcs11Config, runner, http_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.capture_site import statuses, trust_file, verify

    operator = OperatorKey("token operator", Pkcs11Signer(token))
    built = runner.capture(http_site.url("/dynamic"), tmp_path / "packages", operator)
    assert statuses(verify(built.path, trust_file(tmp_path, operator)))["S1"] == "pass"


def test_threads_share_the_token_session(token: Pkcs11Config) -> None:
    """Request threads and capture threads sign at once; one session must not interleave their operations."""
    from concurrent.futures import ThreadPoolExecutor

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signers = [Pkcs11Signer(token) for _ in range(2)]
    messages = [os.urandom(64) for _ in range(200)]
    with ThreadPoolExecutor(8) as pool:
        signatures = list(pool.map(lambda pair: signers[pair[0] % 2].sign(pair[1]), enumerate(messages)))
    public = Ed25519PublicKey.from_public_bytes(signers[0].public_key())
    for message, signature in zip(messages, signatures, strict=True):
        public.verify(signature, message)


def test_a_dropped_session_is_logged_in_again(token: Pkcs11Config) -> None:
    """A token that restarts invalidates the process's session: the next signature logs in afresh."""
    signer = Pkcs11Signer(token)
    signer.sign(b"before")
    # Close the process's session under the signer, as a token restart does (its handles go stale).
    from evidence import signer as signer_module

    for login in list(signer_module._logins.values()):
        login.session.close()
    signature = signer.sign(b"after")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(signer.public_key()).verify(signature, b"after")


def test_a_token_made_after_the_library_loaded_is_found(token: Pkcs11Config, tmp_path: Path) -> None:
    """SoftHSM2 reads its config and lists its tokens when initialised: a token made since (here in
    another token folder, as a second deployment in one process would) is found by initialising the
    library again, and the first token's signer logs in afresh afterwards."""
    module = softhsm_module()
    assert module is not None
    first = Pkcs11Signer(token).public_key()  # the library is loaded and this process is logged in
    before = os.environ["SOFTHSM2_CONF"]
    try:
        os.environ["SOFTHSM2_CONF"] = str(softhsm_conf(tmp_path / "second-softhsm"))
        late = make_token(module, "tiezheng-late", KEY)
        signer = Pkcs11Signer(late)
        signature = signer.sign(b"late manifest")
        Ed25519PublicKey.from_public_bytes(signer.public_key()).verify(signature, b"late manifest")
        assert signer.public_key() != first
    finally:
        os.environ["SOFTHSM2_CONF"] = before
    assert Pkcs11Signer(token).public_key() == first  # back in the first folder: found again, the same key
