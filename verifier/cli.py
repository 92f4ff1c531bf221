"""``tiezheng-verify``: the standalone verifier for courts and opposing counsel.

Thin wiring only: parse arguments, call the verifier, print, exit with 0 (verified), 1 (a check
failed), 2 (unusable input) or 3 (cannot judge: the trust given lacks what the package needs). No
traceback reaches the user. JSON is written with ``ensure_ascii``: every non-ASCII character from a
package, bidi controls included, reaches the terminal as an inert backslash-u escape.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from verifier import merkle
from verifier.court_time import format_time, ordinal_of
from verifier.errors import InvalidInput, TiezhengError, TrustError, VerificationError
from verifier.sanitize import display_text
from verifier.trust import Trust, default_trust, load_trust
from verifier.verdict import Report
from verifier.verify import verify_package
from verifier.wording import LANGS

if TYPE_CHECKING:
    from rich.console import Console

# Start-up time is most of a verification: what only some outputs need is imported where they need
# it, so `--json` loads no rich, no HTML/PDF renderer and no HTTP stack (tests/verifier/test_lazy_imports.py).

EXIT_VERIFIED, EXIT_FAILED, EXIT_UNUSABLE, EXIT_CANNOT_JUDGE = 0, 1, 2, 3


class _LazyConsole:
    """A rich ``Console`` made on first use: rich's import costs more than a whole offline verification."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


def _console(**options: Any) -> Console:
    return cast("Console", _LazyConsole(**options))


def escape(text: str) -> str:
    """rich's markup escape, imported on first use."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n")


def _package_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tiezheng-verify", formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Verify a Tiezheng evidence package (.wacz) on your own machine. Also: "
        "'tiezheng-verify timestamp …', 'tiezheng-verify inclusion …' and 'tiezheng-verify timeline …' "
        "(see their --help)."),
        epilog=("verdicts and exit codes:\n"
                "  0  verified / verified (offline)  every check that could run holds\n"
                "  1  failed        the evidence does not hold: a check failed\n"
                "  2  unusable      not a readable package (or bad arguments)\n"
                "  3  cannot judge  the trust given lacks the operator key or TSA root the package needs;\n"
                "                   get the operator's trust file (/.well-known/tiezheng/trust.toml on its\n"
                "                   service, or `tiezheng trust export FILE`) and pass it with --trust FILE"))
    parser.add_argument("package", type=Path, nargs="?", help="the evidence package (.wacz)")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON (every text in English and Chinese: reason, reason_zh, …)")
    parser.add_argument("--lang", choices=LANGS, default=None,
                        help="language of findings, reasons and legal bases: en, zh (中文) or both; default en in "
                             "the terminal, both in the --html and --pdf documents")
    parser.add_argument("--details", action="store_true",
                        help="print each check's full finding and its legal basis")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rpc", metavar="[CHAIN_ID=]URL", action="append",
                      help="check anchors online against this JSON-RPC node; one per chain id "
                           "(--rpc 1=URL --rpc 11155111=URL), or a bare URL for the chain it serves; may repeat")
    mode.add_argument("--offline", action="store_true", help="use no network (the default)")
    parser.add_argument("--trust", type=Path, action="append", default=[], metavar="FILE",
                        help="a trust file (TOML) to add to the default trust; may repeat")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the report as a self-contained HTML page")
    parser.add_argument("--pdf", type=Path, metavar="FILE",
                        help="also write a bilingual PDF certificate (needs: pip install 'tiezheng[pdf]'; "
                             "without it the verdict and exit code are unchanged)")
    parser.add_argument("--verify-url", metavar="URL",
                        help="the operator's service (https://host): the certificate's QR code links to its "
                             "/verify?fingerprint=... page (default: verify_url of the operator in the trust file)")
    parser.add_argument("--export-page", type=Path, metavar="FILE",
                        help="write the in-browser verifier as one self-contained HTML file (a second, independent "
                             "implementation; runs from file:// with no network) and exit")
    return parser


#: The in-browser verifier, built from verifier/browser by `make setup`.
BROWSER_PAGE = Path(__file__).resolve().parent / "browser" / "dist" / "verify.html"


def _export_page(target: Path, console: Console) -> int:
    """Copy the built in-browser verifier to ``target``. Raises InvalidInput when it is not built."""
    if not BROWSER_PAGE.is_file():
        raise InvalidInput("the in-browser verifier is not built: run `make setup` in the source tree "
                           "(it needs node and npm), or download it from a service's /verify page")
    try:
        target.write_bytes(BROWSER_PAGE.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"cannot write the page to {target}: {exc.strerror or exc}") from exc
    console.print(f"in-browser verifier written to {escape(str(target))}")
    return EXIT_VERIFIED


def _timestamp_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tiezheng-verify timestamp", description=(
        "Check an RFC 3161 time-stamp over a digest: a TimeStampResp (.tsr) or a bare TimeStampToken, "
        "as PDF, CAdES and Authenticode signatures embed it. Legacy SHA-1 tokens are accepted with a "
        "named warning (legacy-sha1-imprint, legacy-sha1-signature). Exit 0 valid, 1 invalid, "
        "2 unusable input."))
    parser.add_argument("tsr", type=Path, help="the TimeStampResp or TimeStampToken file (DER)")
    parser.add_argument("--digest", required=True, help=(
        "the digest the token must cover, hex: 20 (SHA-1), 32, 48 or 64 bytes, as the token's imprint "
        "algorithm says"))
    parser.add_argument("--roots", required=True, type=Path,
                        help="trusted TSA root certificate(s), PEM or DER; a system CA bundle works")
    parser.add_argument("--certs", type=Path, help="extra untrusted certificates (e.g. the TSA's), PEM or DER")
    parser.add_argument("--json", action="store_true", help="print the result (and any warnings) as JSON")
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


def _usable_verify_url(url: str) -> bool:
    from verifier.report.exhibit import verification_link  # a renderer's module: only --verify-url needs it

    return verification_link(url, "0") is not None


def _verify_package(args: argparse.Namespace, console: Console) -> int:
    if args.export_page is not None:
        return _export_page(args.export_page, console)
    if args.package is None:
        _package_parser().error("the following arguments are required: package")
    if args.verify_url is not None and not _usable_verify_url(args.verify_url):
        raise InvalidInput("--verify-url must be an http(s) URL without user name or password, "
                           "such as https://evidence.example")
    trust = _load_trust(args.trust)
    chain = None
    if args.rpc:
        from verifier.chain_source import ChainSources

        chain = ChainSources.parse(args.rpc)
    report = verify_package(args.package, trust, chain=chain)
    args.verify_url = args.verify_url or _operator_verify_url(report, trust)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=True))
    else:
        from verifier.report.terminal import WIDTH, render_report

        console.print(render_report(report, source=str(args.package), lang=args.lang or "en", details=args.details,
                                    width=min(console.width, WIDTH)))
    err = _console(stderr=True)
    for kind, path in _write_documents(report, args, err):
        if not args.json:  # with --json, stdout carries the JSON and nothing else
            console.print(f"{kind} written to {escape(display_text(str(path)))}")
    return report.exit_code


def _operator_verify_url(report: Report, trust: Trust) -> str | None:
    """The verify_url the trust file gives for the operator that signed this package, if any."""
    key = report.facts.get("operator", {}).get("key_id") if isinstance(report.facts.get("operator"), dict) else None
    operator = trust.operator(key) if isinstance(key, str) else None
    return operator.verify_url if operator else None


def _write_documents(report: Report, args: argparse.Namespace, err: Console) -> list[tuple[str, Path]]:
    """Write the --html and --pdf files. A file that cannot be written raises InvalidInput (exit 2).

    A PDF without the ``pdf`` extra is one line on stderr, not an error: the verdict and its exit code
    must not depend on which extras are installed.
    """
    if args.html is None and args.pdf is None:
        return []
    from verifier.report.html_page import render_html
    from verifier.report.pdf_certificate import PDF_EXTRA, pdf_available, write_pdf

    source = str(args.package)
    lang = args.lang or "both"  # a document for a court is bilingual unless --lang asks otherwise
    writers: tuple[tuple[str, Path | None, Callable[[Path], object]], ...] = (
        ("HTML report", args.html, lambda path: path.write_text(
            render_html(report, source=source, package=args.package, lang=lang), encoding="utf-8")),
        ("PDF certificate", args.pdf, lambda path: write_pdf(report, path, source=source, package=args.package,
                                                           verify_url=args.verify_url, lang=lang)))
    written = []
    for kind, path, write in writers:
        if path is None:
            continue
        if kind == "PDF certificate" and not pdf_available():
            err.print("[yellow]no PDF written:[/] the PDF certificate needs the optional 'pdf' extra: "
                      f"{escape(PDF_EXTRA)}", soft_wrap=True)
            continue
        try:
            write(path)
        except InvalidInput as exc:  # the renderer's own setup (e.g. its font), not the package
            err.print(f"[yellow]no {kind} written:[/] {escape(display_text(exc.diagnostics()))}", soft_wrap=True)
            continue
        except OSError as exc:
            raise InvalidInput(f"cannot write the {kind} to {display_text(str(path))}: {exc.strerror or exc}") from exc
        written.append((kind, path))
    return written


def _verify_timestamp(args: argparse.Namespace, console: Console) -> int:
    from verifier.timestamp import UnreadableToken, verify_timestamp
    from verifier.tsa_chain import load_certificates, load_roots

    try:
        token = args.tsr.read_bytes()
        roots = load_roots(args.roots.read_bytes())
        extra = load_certificates(args.certs.read_bytes()) if args.certs else []
    except OSError as exc:
        raise InvalidInput(f"cannot read {exc.filename}: {exc.strerror}") from exc
    digest = _hex(args.digest, "--digest")
    try:
        info = verify_timestamp(token, digest, roots, certificates=extra, allow_sha1=True)
    except UnreadableToken as exc:
        reason = display_text(exc.diagnostics())
        _emit(args.json, console, {"valid": False, "verdict": "unusable", "error": reason},
              lambda: f"[red]UNUSABLE[/] {escape(reason)}")
        return EXIT_UNUSABLE
    except VerificationError as exc:
        reason = display_text(exc.diagnostics())
        _emit(args.json, console, {"valid": False, "verdict": "failed", "error": reason},
              lambda: f"[red]INVALID[/] {escape(reason)}")
        return EXIT_FAILED
    tsa = display_text(info.tsa_name)
    _emit(args.json, console,
          {"valid": True, "verdict": "verified", "gen_time": info.gen_time.isoformat(), "tsa": tsa,
           "serial": str(info.serial), "policy": info.policy, "hash_algorithm": info.hash_algorithm,
           "bare_token": info.bare_token, "rfc3161_client_checked": info.rfc3161_client_checked,
           "warnings": list(info.warnings)},
          lambda: f"[green]VALID[/] {escape(tsa)} at {format_time(info.gen_time)} (serial {info.serial})"
          + "".join(f"\n[yellow]warning:[/] {escape(w)}" for w in info.warnings))
    return EXIT_VERIFIED


def _verify_inclusion(args: argparse.Namespace, console: Console) -> int:
    leaf = (merkle.leaf_hash(_hex(args.leaf, "--leaf")) if args.leaf is not None
            else _hex(args.leaf_hash, "--leaf-hash"))
    proof = [_hex(h, "--proof") for h in args.proof.split(",") if h.strip()]
    root = _hex(args.root, "--root")
    try:
        merkle.verify_inclusion(leaf, args.index, args.size, proof, root)
    except VerificationError as exc:
        reason = str(exc)
        _emit(args.json, console, {"valid": False, "error": exc.diagnostics()},
              lambda: f"[red]INVALID[/] {escape(reason)}")
        return EXIT_FAILED
    _emit(args.json, console, {"valid": True},
          lambda: f"[green]VALID[/] leaf index {args.index} ({ordinal_of(args.index, args.size)}) "
                  f"is under {root.hex()}")
    return EXIT_VERIFIED


def _timeline_parser() -> argparse.ArgumentParser:
    from verifier.timeline_cli import parser

    return parser()


def _verify_timeline(args: argparse.Namespace, console: Console) -> int:
    from verifier.timeline_cli import run

    return run(args, console)


def _emit(as_json: bool, console: Console, body: dict[str, object], text: Callable[[], str]) -> None:
    """Print ``body`` as JSON, or ``text()``: made only for the terminal, its markup escaping needs rich."""
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        console.print(text())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tiezheng-verify``; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    console = _console()
    err = _console(stderr=True)
    handlers = {"timestamp": (_timestamp_parser, _verify_timestamp),
                "inclusion": (_inclusion_parser, _verify_inclusion),
                "timeline": (_timeline_parser, _verify_timeline)}
    make_parser, handler = handlers.get(args_list[0] if args_list else "", (_package_parser, _verify_package))
    rest = args_list[1:] if args_list and args_list[0] in handlers else args_list
    try:
        args = make_parser().parse_args(rest)
        return handler(args, console)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_UNUSABLE
    except TrustError as exc:
        err.print(f"[red]trust configuration error:[/] {escape(display_text(exc.diagnostics()))}")
        return EXIT_UNUSABLE
    except TiezhengError as exc:
        err.print(f"[red]error:[/] {escape(display_text(exc.diagnostics()))}")
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
