"""The ``tiezheng`` commands: thin wiring over evidence/, anchor/ and verifier/.

Every command takes ``--data-dir`` (env ``TIEZHENG_DATA_DIR``, default ``~/.tiezheng``), before or
after its name, as does ``--json`` where it applies. Errors are printed as one clear line by the
entry point (api/cli/app.py); no traceback reaches the user.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from api.cli.admin import keys_app, serve, tenants_app
from api.cli.capture import capture
from api.cli.cases import matter_app, timeline, watch_app
from api.cli.doctor import doctor
from api.cli.help_text import plain_help_types
from api.cli.log import log_app
from api.cli.notice import notice_app
from api.cli.sessions import session_app
from api.cli.stream import capture_stream
from api.cli.support import DataDir, JsonFlag, UserError, apply_global_options, existing_settings, input_file
from api.cli.support import writable_settings as _settings
from api.cli.worker import worker_app
from api.service.errors import ServiceError
from api.service.settings import Settings, load_settings

plain_help_types()
app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Tiezheng (铁证): capture, seal and verify web evidence.\n\n"
                       "--data-dir and --json may come before the command or after it.")
chain_app = typer.Typer(no_args_is_help=True, help="The embedded anvil devnet.")
tsa_app = typer.Typer(no_args_is_help=True, help="The embedded development TSA.")
trust_app = typer.Typer(no_args_is_help=True, help="Trust settings for tiezheng-verify.")
app.add_typer(chain_app, name="chain")
app.add_typer(tsa_app, name="tsa")
app.add_typer(trust_app, name="trust")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.command()(capture)
app.command("capture-stream")(capture_stream)
app.command()(doctor)
app.add_typer(worker_app, name="worker")
app.add_typer(matter_app, name="matter")
app.add_typer(watch_app, name="watch")
app.add_typer(session_app, name="session")
app.command()(timeline)
app.add_typer(log_app, name="log")
app.add_typer(notice_app, name="notice")

console = Console()
errors = Console(stderr=True)


@app.callback()
def global_options(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """The options every command shares, given before the command's name."""
    apply_global_options(data_dir, as_json)


def _item_json(evidence_id: str, fingerprint: str, package: Path, status: str) -> str:
    return json.dumps({"evidence_id": evidence_id, "fingerprint": fingerprint, "package": str(package),
                       "status": status})


@app.command()
def upload(files: Annotated[list[Path], typer.Argument(metavar="FILES...", help="Files to seal as one evidence item.")],
           note: Annotated[str, typer.Option(help="A note stored in the manifest.")] = "",
           matter: Annotated[str | None, typer.Option(metavar="ID", help="File it under this matter.")] = None,
           data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Make an upload evidence package of existing files and queue it for sealing."""
    files = [input_file(file) for file in files]
    with errors.status(f"packaging {len(files)} file(s)…", spinner="dots"):
        from api.service import pipeline

        try:
            built = pipeline.upload_local(_settings(data_dir), files, note=note, matter=matter)
        except ServiceError as exc:
            raise UserError(str(exc), "see `tiezheng matter list`" if matter else "") from None
    if as_json:
        print(_item_json(built.evidence_id, built.fingerprint.hex(), built.path, "pending"))
    else:
        console.print(f"[green]accepted[/] {built.evidence_id}  fingerprint {built.fingerprint.hex()}\n"
                      f"  package {built.path}\n  status  pending (run `tiezheng seal`)")


@app.command()
def seal(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Seal everything pending now: batch, timestamp, anchor, attach proofs."""
    # The spinner shows before the chain libraries load (seconds on a cold start), naming each step.
    with errors.status("loading the sealing tools…", spinner="dots") as step:
        from api.service import pipeline

        # Status.update redraws only on its next tick (80 ms); a new spinner redraws at once, so a
        # step shorter than a tick is still shown.
        outcome = pipeline.seal_pending(_settings(data_dir), on_step=lambda text: step.update(text, spinner="dots"))
    for batch in outcome.batches:
        anchor = batch.get("anchor") or {}
        if not as_json:
            console.print(f"[green]sealed[/] batch {batch.get('id')}: {batch.get('tree_size')} item(s), root "
                          f"{batch.get('root')}\n  tx {anchor.get('tx_hash')} in block {anchor.get('block_number')}")
    for item in outcome.items:
        if as_json:
            print(_item_json(item.evidence_id, item.fingerprint.hex(), item.package, "sealed"))
        else:
            console.print(f"  {item.evidence_id}  {item.package}")
    if outcome.left:
        errors.print(f"[yellow]{outcome.left} item(s) still pending[/]: see `tiezheng status` for the reason; "
                     "they are retried on the next `tiezheng seal`.")
        raise typer.Exit(1)


@app.command()
def status(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Show how many items are pending, batched and sealed, any batch waiting on a retry, any missing anchor."""
    from api.service.pipeline import local_status

    state = local_status(existing_settings(data_dir))
    if as_json:
        print(json.dumps({"items": state.items, "unfinished_batches": state.unfinished_batches,
                          "missing_anchors": state.missing_anchors}))
        return
    tally = state.items
    console.print("items: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())) if tally else "no items yet")
    for b in state.unfinished_batches:
        console.print(f"[yellow]batch {b['id']}[/] {b['state']}, attempt {b['attempts']}: "
                      f"{escape(b['last_error'] or '')}")
    for a in state.missing_anchors:
        console.print(f"[yellow]batch {a['batch_id']}[/] sealed, its anchor on chain {a['chain_id']} still "
                      f"{a['state']}, attempt {a['attempts']}: {escape(a['last_error'] or '')}")


@app.command()
def verify(package: Annotated[Path, typer.Argument(metavar="PACKAGE", help="The .wacz evidence package.")],
           as_json: JsonFlag = False,
           rpc: Annotated[list[str] | None, typer.Option(
               help="Check anchors online: [CHAIN_ID=]URL, one per chain; may repeat.")] = None,
           offline: Annotated[bool, typer.Option("--offline",
                                                 help="Use no network (the default without --rpc).")] = False,
           trust: Annotated[list[Path] | None, typer.Option(help="Extra trust file(s).")] = None,
           data_dir: DataDir = None) -> None:
    """tiezheng-verify, with this data dir's own trust added (flagged as development)."""
    from verifier import cli as verify_cli

    input_file(package, what="package")
    for extra in trust or []:
        input_file(extra, what="trust file")
    argv = [str(package), *[a for t in trust or [] for a in ("--trust", str(t))]]
    argv += ["--json"] if as_json else []
    argv += [a for url in rpc for a in ("--rpc", url)] if rpc else (["--offline"] if offline else [])
    settings = load_settings(data_dir)
    if data_dir is not None:
        existing_settings(data_dir, needs_database=False)  # a mistyped --data-dir is an error, not silence
    if settings.signer == "file" and not settings.operator_key_path.is_file():
        errors.print(f"[yellow]note:[/] no operator key in {escape(str(settings.root))}: verifying with the "
                     "default trust only")
        raise typer.Exit(verify_cli.main(argv))
    # The data dir's trust goes to a temp file: verifying writes nothing into the data dir.
    with tempfile.TemporaryDirectory(prefix="tiezheng-trust-") as folder:
        trust_file = _write_local_trust(settings, Path(folder) / "trust-local.toml")
        code = verify_cli.main([*argv, "--trust", str(trust_file)])
    raise typer.Exit(code)


def _write_local_trust(settings: Settings, target: Path | None = None) -> Path:
    from api.service.runtime import local_trust, trust_toml

    path = target or settings.root / "trust-local.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(trust_toml(local_trust(settings)), encoding="utf-8")
    return path


@trust_app.command("export")
def trust_export(file: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the TOML.")],
                 data_dir: DataDir = None) -> None:
    """Write this data dir's trust (operator key and its declared qualifications, dev TSA CA, devnet) for
    `tiezheng-verify --trust`."""
    if file.is_dir():
        raise UserError(f"{file} is a folder", "give the name of the file to write, e.g. trust.toml")
    settings = existing_settings(data_dir, needs_database=False)
    # A key file is made by the first upload or capture; a token's key exists on its own.
    if settings.signer == "file" and not settings.operator_key_path.is_file():
        raise UserError(f"{settings.root} has no operator key yet",
                        "check --data-dir; a first upload or capture makes one")
    path = _write_local_trust(settings, file)
    console.print(f"trust written to {path} (development entries are flagged as such)")


SecondFlag = Annotated[bool, typer.Option(
    "--second", help="The second devnet (chain id 31338, state in DIR/chain2): once it was started, "
                     "the embedded sealer anchors every batch on both devnets.")]


@chain_app.command("up")
def chain_up(data_dir: DataDir = None, second: SecondFlag = False) -> None:
    """Start the anvil devnet (state kept in the data dir)."""
    from api.service.chains import devnet

    chain = devnet(_settings(data_dir), second=second)
    url = chain.start()
    console.print(f"devnet (chain {chain.chain_id}) running at {url}; it keeps running until "
                  f"`tiezheng chain down{' --second' if second else ''}`")


@chain_app.command("down")
def chain_down(data_dir: DataDir = None, second: SecondFlag = False) -> None:
    """Stop the anvil devnet; its state is saved."""
    from api.service.chains import devnet

    stopped = devnet(load_settings(data_dir), second=second).stop()
    console.print("devnet stopped" if stopped else "devnet was not running")


@chain_app.command("status")
def chain_status(data_dir: DataDir = None, as_json: JsonFlag = False, second: SecondFlag = False) -> None:
    """Show the chain the sealer anchors on (the first, or --second): RPC URL, chain id and latest block."""
    from api.service.chains import chain_status as status_of

    try:
        body = status_of(load_settings(data_dir), second=second)
    except ServiceError as exc:
        raise UserError(str(exc), "list several in TIEZHENG_CHAINS") from None
    if as_json:
        print(json.dumps(body))
    elif body["rpc_url"] is None:
        console.print(f"devnet not running (start it with `tiezheng chain up{' --second' if second else ''}`)")
    else:
        console.print(f"chain {body['chain_id']} at {body['rpc_url']}, block {body['block']}")


@tsa_app.command("serve")
def tsa_serve(port: Annotated[int, typer.Option(help="Loopback port (0: any free port).")] = 3161,
              data_dir: DataDir = None) -> None:
    """Run the development TSA alone over HTTP on loopback until interrupted."""
    import threading

    from api.service.runtime import dev_tsa

    with dev_tsa(_settings(data_dir)).serve(port=port) as server:
        console.print(f"development TSA at {server.url} (Ctrl-C to stop)")
        threading.Event().wait()


@app.command()
def demo(data_dir: DataDir = None) -> None:
    """The main job on embedded defaults: make evidence from the samples, seal it, verify it."""
    with errors.status("loading the capture and sealing tools…", spinner="dots"):
        from api.cli.demo import run_demo

        settings = _settings(data_dir)
    raise typer.Exit(run_demo(settings, console))


app.command()(serve)

