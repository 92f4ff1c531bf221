"""``tiezheng-verify``: the standalone verifier for courts and opposing counsel.

Thin wiring only: parse arguments, call the verifier, print, exit with 0 (verified), 1 (a check
failed) or 2 (unusable input). No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape

from verifier import merkle
from verifier.chain_source import ChainSources
from verifier.errors import InvalidInput, TiezhengError, TrustError, VerificationError
from verifier.render import render_report
from verifier.report import Report, Verdict
from verifier.report_html import render_html
from verifier.report_pdf import write_pdf
from verifier.timestamp import verify_timestamp
from verifier.trust import Trust, default_trust, load_trust
from verifier.tsa_chain import load_certificates
from verifier.verify import verify_package

EXIT_VERIFIED, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
SUBCOMMANDS = ("timestamp", "inclusion")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n")


def _package_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tiezheng-verify", description=(
        "Verify a Tiezheng evidence package (.wacz) on your own machine. Also: "
        "'tiezheng-verify timestamp …' and 'tiezheng-verify inclusion …' (see their --help)."))
    parser.add_argument("package", type=Path, help="the evidence package (.wacz)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rpc", metavar="[CHAIN_ID=]URL", action="append",
                      help="check anchors online against this JSON-RPC node; one per chain id "
                           "(--rpc 1=URL --rpc 11155111=URL), or a bare URL for the chain it serves; may repeat")
    mode.add_argument("--offline", action="store_true", help="use no network (the default)")
    parser.add_argument("--trust", type=Path, action="append", default=[], metavar="FILE",
                        help="a trust file (TOML) to add to the default trust; may repeat")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the report as a self-contained HTML page")
    parser.add_argument("--pdf", type=Path, metavar="FILE",
                        help="also write a bilingual PDF certificate (needs: pip install 'tiezheng[pdf]')")
    return parser


def _timestamp_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tiezheng-verify timestamp", description="Check a bare RFC 3161 response over a digest.")
    parser.add_argument("tsr", type=Path, help="the TimeStampResp file (DER)")
    parser.add_argument("--digest", required=True, help="the digest the token must cover, hex (32/48/64 bytes)")
    parser.add_argument("--roots", required=True, type=Path, help="trusted TSA root certificate(s), PEM")
    parser.add_argument("--certs", type=Path, help="extra untrusted certificates (e.g. the TSA's), PEM")
    parser.add_argument("--json", action="store_true")
    return parser


def _inclusion_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tiezheng-verify inclusion", description="Check one RFC 9162 inclusion proof.")
    leaf = parser.add_mutually_exclusive_group(required=True)
    leaf.add_argument("--leaf", help="the leaf data, hex (for Tiezheng: the evidence fingerprint)")
    leaf.add_argument("--leaf-hash", help="the RFC 9162 leaf hash, hex, when the data is not at hand")
    parser.add_argument("--index", required=True, type=int)
    parser.add_argument("--size", required=True, type=int)
    parser.add_argument("--root", required=True)
    parser.add_argument("--proof", default="", help="comma-separated hex hashes, leaf to root")
    parser.add_argument("--json", action="store_true")
    return parser


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.strip().removeprefix("0x"))
    except ValueError as exc:
        raise InvalidInput(f"{what} is not hex") from exc


def _load_trust(files: Sequence[Path]) -> Trust:
    trust = default_trust()
    for file in files:
        trust = trust.merged(load_trust(file))
    return trust


def _verify_package(args: argparse.Namespace, console: Console) -> int:
    trust = _load_trust(args.trust)
    chain = ChainSources.parse(args.rpc) if args.rpc else None
    report = verify_package(args.package, trust, chain=chain)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        console.print(render_report(report, source=str(args.package)))
    for kind, path in _write_documents(report, args):
        if not args.json:  # with --json, stdout carries the JSON and nothing else
            console.print(f"{kind} written to {escape(str(path))}")
    if report.verdict is Verdict.UNUSABLE:
        return EXIT_UNUSABLE
    return EXIT_VERIFIED if report.verified else EXIT_FAILED


def _write_documents(report: Report, args: argparse.Namespace) -> list[tuple[str, Path]]:
    """Write the --html and --pdf files. A file that cannot be written raises InvalidInput (exit 2)."""
    source = str(args.package)
    writers: tuple[tuple[str, Path | None, Callable[[Path], object]], ...] = (
        ("HTML report", args.html, lambda path: path.write_text(render_html(report, source=source), encoding="utf-8")),
        ("PDF certificate", args.pdf, lambda path: write_pdf(report, path, source=source)))
    written = []
    for kind, path, write in writers:
        if path is None:
            continue
        try:
            write(path)
        except OSError as exc:
            raise InvalidInput(f"cannot write the {kind} to {path}: {exc.strerror or exc}") from exc
        written.append((kind, path))
    return written


def _verify_timestamp(args: argparse.Namespace, console: Console) -> int:
    try:
        token = args.tsr.read_bytes()
        roots = load_certificates(args.roots.read_bytes())
        extra = load_certificates(args.certs.read_bytes()) if args.certs else []
    except OSError as exc:
        raise InvalidInput(f"cannot read {exc.filename}: {exc.strerror}") from exc
    digest = _hex(args.digest, "--digest")
    try:
        info = verify_timestamp(token, digest, roots, certificates=extra)
    except VerificationError as exc:
        _emit(args.json, console, {"valid": False, "error": exc.diagnostics()}, f"[red]INVALID[/] {escape(str(exc))}")
        return EXIT_FAILED
    _emit(args.json, console,
          {"valid": True, "gen_time": info.gen_time.isoformat(), "tsa": info.tsa_name,
           "serial": str(info.serial), "policy": info.policy, "hash_algorithm": info.hash_algorithm},
          f"[green]VALID[/] {escape(info.tsa_name)} at {info.gen_time.isoformat()} (serial {info.serial})")
    return EXIT_VERIFIED


def _verify_inclusion(args: argparse.Namespace, console: Console) -> int:
    leaf = (merkle.leaf_hash(_hex(args.leaf, "--leaf")) if args.leaf is not None
            else _hex(args.leaf_hash, "--leaf-hash"))
    proof = [_hex(h, "--proof") for h in args.proof.split(",") if h.strip()]
    root = _hex(args.root, "--root")
    try:
        merkle.verify_inclusion(leaf, args.index, args.size, proof, root)
    except VerificationError as exc:
        _emit(args.json, console, {"valid": False, "error": exc.diagnostics()}, f"[red]INVALID[/] {escape(str(exc))}")
        return EXIT_FAILED
    _emit(args.json, console, {"valid": True},
          f"[green]VALID[/] leaf {args.index} of {args.size} is under {root.hex()}")
    return EXIT_VERIFIED


def _emit(as_json: bool, console: Console, body: dict[str, object], text: str) -> None:
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        console.print(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tiezheng-verify``; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    err = Console(stderr=True)
    handlers = {"timestamp": (_timestamp_parser, _verify_timestamp),
                "inclusion": (_inclusion_parser, _verify_inclusion)}
    make_parser, handler = handlers.get(args_list[0] if args_list else "", (_package_parser, _verify_package))
    rest = args_list[1:] if args_list and args_list[0] in handlers else args_list
    try:
        args = make_parser().parse_args(rest)
        return handler(args, console)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_UNUSABLE
    except TrustError as exc:
        err.print(f"[red]trust configuration error:[/] {escape(exc.diagnostics())}")
        return EXIT_UNUSABLE
    except TiezhengError as exc:
        err.print(f"[red]error:[/] {escape(exc.diagnostics())}")
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        # A bug, not the user's input: still one line, never a traceback; TIEZHENG_DEBUG=1 shows it.
        if os.environ.get("TIEZHENG_DEBUG"):
            raise
        err.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
                  "(please report it; TIEZHENG_DEBUG=1 shows the traceback)")
        return EXIT_UNUSABLE


def run() -> NoReturn:
    sys.exit(main())
