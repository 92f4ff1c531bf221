"""One capture, step by step, each step logged in the hash-chained call log as it happens.

0. environment-check  evidence/environment-check.json: hosts, resolver, proxies, clock offsets,
              egress address, browser binary and extensions, before anything touches the target
1. start      the request: URL, options, operator, requester
2. resolve    DNS answers for the host; the address policy refuses private targets
3. fetch      the raw fetch (httpx) → evidence/source.html; redirects, server address, TLS
4. robots     robots.txt status, recorded and not obeyed
   video-start  the session video starts recording the new page's viewport (evidence/session.webm),
              unless no_video
5. navigate   a fresh incognito context behind this capture's recorder loads the URL (holding only
              the requester's session for a logged-in capture, evidence.browser_session)
6. wait       load / network idle / fixed seconds, then scrolling for lazy content
   scripted-step  each scripted step (evidence/capture_steps.py), with its viewport screenshot
7. screenshot evidence/screenshot.png (full page by default)
8. dom        evidence/dom.html, the DOM after load; the session video stops recording
9. warc       the recorder stops; archive/data.warc.gz holds every exchange byte-exact
   media      evidence/media.json indexes every image, audio and video response (media/ files too
              with save_media; evidence.media_index)
10. network   evidence/network.json: DNS, hops, TLS, browser view, traffic summary
11. index     pages/pages.jsonl, indexes/index.cdx.gz and indexes/index.idx for replay
   video      the session video, finished by ffmpeg meanwhile, with its hash and the log lines it covers

``capture_package`` then logs ``package`` and signs and writes the package. Each step has its own
timeout; any failure raises CaptureError with a one-line reason and leaves no package.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from playwright.async_api import BrowserContext, Page, Response
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from evidence.browser import WarmBrowser
from evidence.browser_session import redact_request_head, unexpected_cookies
from evidence.call_log import CallLog, output_record
from evidence.capture_errors import CaptureError
from evidence.capture_options import CaptureOptions
from evidence.capture_steps import run_steps
from evidence.clock_probe import ClockReferences
from evidence.environment_check import environment_check
from evidence.media_index import build_media
from evidence.network_facts import Fetcher, RawFetch, robots_status
from evidence.operator_key import OperatorKey
from evidence.recorder import Recorder
from evidence.resolver import HostResolver
from evidence.session_video import LoggedVideo
from evidence.ssrf import AddressPolicy, split_url
from evidence.tls_policy import TlsPolicy
from evidence.warc_index import cdxj_index, pages_jsonl
from evidence.warc_sink import WarcSink
from verifier.capture_format import (
    CHANGE_PATH,
    DOM_PATH,
    ENVIRONMENT_PATH,
    ENVIRONMENT_STEP,
    INDEX_PATH,
    INDEX_SUMMARY_PATH,
    NETWORK_FORMAT,
    NETWORK_PATH,
    PAGES_PATH,
    SCREENSHOT_PATH,
    SOURCE_PATH,
    WARC_PATH,
)
from verifier.manifest_writer import requester_json, utc_iso
from verifier.media_index import MEDIA_INDEX_PATH
from verifier.package import Requester

MAX_SCREENSHOT_BYTES = 64 << 20
MAX_SCREENSHOT_HEIGHT = 16384
MAX_DOM_BYTES = 64 << 20
STEP_TIMEOUT_SECONDS = 30.0
SCROLL_PAUSE_MS = 120
MAX_SCROLL_STEPS = 40
SETTLE_AFTER_SCROLL_SECONDS = 5.0
MAX_REDIRECTS_LISTED = 20
#: Scrolls one viewport at a time to the bottom (so lazy images load), then back to the top.
SCROLL_SCRIPT = """async ([pause, maxSteps]) => {
  const root = document.scrollingElement || document.documentElement;
  if (root.scrollHeight <= window.innerHeight) return [0, root.scrollHeight];
  let steps = 0;
  for (let y = 0; y < root.scrollHeight && steps < maxSteps; y += window.innerHeight, steps++) {
    window.scrollTo(0, y);
    await new Promise(r => setTimeout(r, pause));
  }
  const height = root.scrollHeight;
  window.scrollTo(0, 0);
  return [steps, height];
}"""


def _redirect_chain(response: Response | None) -> list[str]:
    """The URLs the browser was redirected from, first to last, for its main document."""
    chain: list[str] = []
    request = response.request.redirected_from if response else None
    while request is not None and len(chain) < MAX_REDIRECTS_LISTED:
        chain.insert(0, request.url)
        request = request.redirected_from
    return chain


@dataclass
class CaptureOutcome:
    """What a finished run hands to packaging."""

    evidence_id: str
    requested_url: str
    started: datetime
    work: Path
    log: CallLog
    raw: RawFetch
    browser_final_url: str
    title: str
    proxy: dict[str, Any]
    profile: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


class CaptureRun:
    def __init__(self, url: str, *, browser: WarmBrowser, options: CaptureOptions, operator: OperatorKey,
                 requester: Requester, work: Path, evidence_id: str, started: datetime,
                 clock_references: ClockReferences | None = None) -> None:
        self.url, self.browser, self.options = url, browser, options
        self.clock_references = clock_references or ClockReferences()
        self.operator, self.requester = operator, requester
        self.work, self.evidence_id, self.started = work, evidence_id, started
        self.policy = AddressPolicy(allow_private=options.allow_private)
        self.tls = TlsPolicy(allow_untrusted=options.allow_untrusted_tls, extra_ca_pem=options.extra_ca_pem)
        self.resolver = HostResolver(self.policy)
        self.log = CallLog(work / "capture-log.jsonl")
        session = options.session
        self.warc = WarcSink(work / "data.warc.gz", f"Tiezheng web capture {evidence_id} of {url[:500]}",
                             redact_request=redact_request_head if session else None)
        self.fetcher = Fetcher(resolver=self.resolver, tls_policy=self.tls, warc=self.warc,
                               user_agent=browser.facts.user_agent, timeout=options.timeout, egress=options.egress,
                               cookie_header=session.cookie_header if session else lambda _url: None)
        self.recorder = Recorder(resolver=self.resolver, tls_policy=self.tls, interception=browser.interception,
                                 warc=self.warc, response_timeout=options.timeout, egress=options.egress)
        self.files: dict[str, Path] = {}
        self._responses: list[Response] = []
        self.video: LoggedVideo | None = None

    def _file(self, path_in_package: str, data: bytes) -> dict[str, Any]:
        target = self.work / path_in_package.replace("/", "__")
        target.write_bytes(data)
        self.files[path_in_package] = target
        return output_record(path_in_package, target)

    async def run(self) -> CaptureOutcome:
        """Run every step. Raises CaptureError; the caller removes the work folder either way."""
        try:
            return await self._run()
        finally:
            if self.video is not None:
                await self.video.close()
            await self.recorder.stop()
            self.warc.close()
            self.resolver.close()

    async def _environment_check(self) -> None:
        record = await environment_check(evidence_id=self.evidence_id, url=self.url, browser=self.browser,
                                         resolver=self.resolver, references=self.clock_references,
                                         egress_proxy=self.options.egress)
        hosts, clock, egress = record["hosts_file"], record["clock"], record["egress"]
        self.log.record(ENVIRONMENT_STEP, inputs={"evidence_id": self.evidence_id, "requested_url": self.url},
                        outcome={"hosts_sha256": hosts.get("sha256"),
                                 "hosts_non_default": hosts.get("non_default_count"),
                                 "clock_tsa": clock["tsa"]["status"], "clock_ntp": clock["ntp"]["status"],
                                 "egress": egress["status"]},
                        outputs=[self._file(ENVIRONMENT_PATH, json.dumps(record, indent=1, ensure_ascii=False)
                                            .encode())])

    async def _run(self) -> CaptureOutcome:
        opts = self.options
        await self._environment_check()
        self.log.record("start", inputs={"evidence_id": self.evidence_id, "requested_url": self.url,
                                         "options": opts.record(), "operator": self.operator.key_id,
                                         "requester": requester_json(self.requester)})
        _, host, _ = split_url(self.url)
        resolution = await self.resolver.resolve(host)
        self.policy.check(host, resolution.addresses)
        self.log.record("resolve", inputs={"host": host}, outcome={"source": resolution.source,
                                                                    "answers": resolution.answers})
        raw = await self.fetcher.fetch(self.url)
        final = raw.final
        self.log.record("fetch", inputs={"url": self.url, "method": "GET", "client": "httpx"},
                        outcome={"http_status": final.status, "final_url": final.url, "redirects": len(raw.hops) - 1,
                                 "server": f"{final.ip}:{final.port}", "content_encoding": raw.body.record()},
                        outputs=[self._file(SOURCE_PATH, raw.body.data)])
        if final.status >= 400 and not opts.accept_error_status:
            raise CaptureError(f"{final.url[:200]} answered HTTP {final.status} {final.reason}".rstrip()
                               + " (capture error pages as evidence with accept_error_status)")
        robots = None
        if opts.check_robots:
            robots = await robots_status(self.fetcher, final.url, self.browser.facts.user_agent)
            self.log.record("robots", inputs={"url": robots["url"]},
                            outcome={k: robots.get(k) for k in ("status", "allows_page", "obeyed", "error")})
        await self.recorder.start()
        context = await self.browser.new_context(self.recorder.proxy_url, viewport=opts.viewport,
                                                 storage_state=opts.session.state if opts.session else None)
        try:
            return await self._in_browser(context, raw, robots)
        finally:
            await context.close()

    async def _in_browser(self, context: BrowserContext, raw: RawFetch,
                          robots: dict[str, Any] | None) -> CaptureOutcome:
        cookies = await context.cookies()
        foreign = unexpected_cookies(cookies, self.options.session)
        if foreign:
            raise CaptureError(f"the new browser context holds {foreign} cookie(s) that are not the "
                               "capture's session")
        profile = {"context": "new incognito browser context for this capture", "cookies_at_start": len(cookies),
                   "cookies_from": "the requester's stored session" if self.options.session else None,
                   "service_workers": "blocked",
                   "user_data_dir": next((f.split("=", 1)[1] for f in self.browser.facts.flags
                                          if f.startswith("--user-data-dir=")), None)}
        page = await context.new_page()
        page.on("response", self._note_response)
        if self.options.video:
            self.video = await LoggedVideo.begin(page, self.work, viewport=self.options.viewport, log=self.log)
        response = await self._navigate(page)
        await self._wait(page)
        if self.options.steps:
            await run_steps(page, self.options.steps, scroll=self._scroll_pass, write_file=self._file,
                            log=self.log.record)
        url = page.url
        await self._screenshot(page, url)
        dom = (await asyncio.wait_for(page.content(), STEP_TIMEOUT_SECONDS)).encode("utf-8")
        if len(dom) > MAX_DOM_BYTES:
            raise CaptureError(f"the DOM is over {MAX_DOM_BYTES} bytes")
        self.log.record("dom", inputs={"url": url}, outputs=[self._file(DOM_PATH, dom)])
        if self.video is not None:
            await self.video.end()  # ffmpeg finishes the file while the WARC and the index are made
        title = await page.title()
        main = await self._main_document(response)
        unrecorded = await self._unrecorded()
        await context.close()
        await self.recorder.stop()
        self.warc.close()
        self.log.record("warc", inputs={"records": self.warc.records, "browser_exchanges": len(self.recorder.exchanges),
                                        "raw_fetch_hops": len(raw.hops), "refused": len(self.recorder.refused)},
                        outputs=[output_record(WARC_PATH, self.warc.path)])
        self.files[WARC_PATH] = self.warc.path
        await asyncio.to_thread(self._media)
        proxy = self._proxy_record(unrecorded)
        network = self._network(raw, robots, url, response, main, unrecorded)
        self.log.record("network", inputs={"hosts": len(network["dns"])},
                        outputs=[self._file(NETWORK_PATH, json.dumps(network, indent=1, ensure_ascii=False).encode())])
        # An empty title makes frictionless (inside `wacz validate`) read the page row as blank.
        pages = pages_jsonl([{"url": url, "ts": utc_iso(self.started), "title": title or url}])
        index = await asyncio.to_thread(cdxj_index, self.warc.path)
        self.log.record("index", inputs={"pages": 1}, outputs=[self._file(PAGES_PATH, pages),
                                                               self._file(INDEX_PATH, index.blocks),
                                                               self._file(INDEX_SUMMARY_PATH, index.summary)])
        if self.video is not None:
            await self.video.finish(self.files)
        if self.options.previous_package is not None:
            await asyncio.to_thread(self._change, raw)
        return CaptureOutcome(evidence_id=self.evidence_id, requested_url=self.url, started=self.started,
                              work=self.work, log=self.log, raw=raw, browser_final_url=url,
                              title=title, proxy=proxy, profile=profile, files=dict(self.files))

    def _change(self, raw: RawFetch) -> None:
        """A watch's run: compare with the previous run's package into ``evidence/change.json``, logged
        like every artifact so P2 can hold it to its hash. A previous package that cannot be compared
        is logged with the reason and leaves no record: the run itself is still evidence."""
        from evidence.change import CaptureFiles, ChangeError, compare
        from evidence.page_text import FieldSpecError, parse_key_fields

        previous = self.options.previous_package
        assert previous is not None
        inputs = {"previous_package": previous.name, "key_fields": dict(self.options.key_fields)}
        try:
            current = CaptureFiles.from_files(self.files, http_status=raw.final.status, final_url=raw.final.url)
            record = compare(previous, current, key_fields=parse_key_fields(dict(self.options.key_fields)))
        except (ChangeError, FieldSpecError) as exc:
            self.log.record("change", inputs=inputs, outcome={"compared": False, "reason": str(exc)[:500]})
            return
        self.log.record("change", inputs=inputs, outcome={"compared": True, "classification": record.classification},
                        outputs=[self._file(CHANGE_PATH, record.canonical_bytes())])

    def _media(self) -> None:
        """``evidence/media.json`` and, with ``save_media``, each medium as ``media/<sha256>.<ext>``."""
        media = build_media(self.warc.path, self.recorder.exchanges, self.work, save=self.options.save_media)
        self.files.update(media.saved)
        self.log.record("media", inputs={"browser_exchanges": len(self.recorder.exchanges),
                                         "save_media": self.options.save_media},
                        outcome=media.summary(),
                        outputs=[self._file(MEDIA_INDEX_PATH, media.index),
                                 *(output_record(name, path) for name, path in media.saved.items())])

    def _note_response(self, response: Response) -> None:
        self._responses.append(response)

    async def _navigate(self, page: Page) -> Response | None:
        wait = self.options.wait
        wait_until: Literal["load", "networkidle"] = "networkidle" if wait == "networkidle" else "load"
        try:
            response = await page.goto(self.url, wait_until=wait_until, timeout=self.options.timeout * 1000)
        except PlaywrightTimeout as exc:
            what = "settle (no network idle)" if wait_until == "networkidle" else "finish loading"
            raise CaptureError(f"the page did not {what} within {self.options.timeout:g} s") from exc
        except PlaywrightError as exc:
            raise CaptureError(f"the browser could not load {self.url[:200]}: {exc.message.splitlines()[0]}") from exc
        self.log.record("navigate", inputs={"url": self.url, "wait_until": wait_until},
                        outcome={"http_status": response.status if response else None,
                                 "url": response.url if response else page.url,
                                 "redirects": _redirect_chain(response)})
        return response

    async def _wait(self, page: Page) -> None:
        opts = self.options
        outcome: dict[str, Any] = {}
        if not isinstance(opts.wait, str):
            await page.wait_for_timeout(opts.wait * 1000)
            outcome["waited_seconds"] = opts.wait
        if opts.scroll:
            outcome.update(await self._scroll_pass(page))
            if outcome["scroll_steps"] > 1:
                try:
                    await page.wait_for_load_state("networkidle", timeout=SETTLE_AFTER_SCROLL_SECONDS * 1000)
                    outcome["settled_after_scroll"] = True
                except PlaywrightTimeout as exc:
                    if opts.wait == "networkidle":
                        raise CaptureError(f"the page did not settle within {SETTLE_AFTER_SCROLL_SECONDS:g} s "
                                           "after scrolling") from exc
                    outcome["settled_after_scroll"] = False
        self.log.record("wait", inputs={"mode": opts.wait, "scroll": opts.scroll}, outcome=outcome)

    async def _scroll_pass(self, page: Page) -> dict[str, Any]:
        steps, height = await asyncio.wait_for(page.evaluate(SCROLL_SCRIPT, [SCROLL_PAUSE_MS, MAX_SCROLL_STEPS]),
                                               STEP_TIMEOUT_SECONDS)
        return {"scroll_steps": steps, "scroll_height": height}

    async def _screenshot(self, page: Page, url: str) -> None:
        opts = self.options
        height = int(await page.evaluate("(document.scrollingElement || document.documentElement).scrollHeight"))
        clip = None
        if opts.full_page and height > MAX_SCREENSHOT_HEIGHT:
            clip = {"x": 0, "y": 0, "width": opts.viewport[0], "height": MAX_SCREENSHOT_HEIGHT}
        try:
            png = await page.screenshot(full_page=opts.full_page, type="png", clip=clip,  # type: ignore[arg-type]
                                        timeout=STEP_TIMEOUT_SECONDS * 1000)
        except PlaywrightError as exc:
            raise CaptureError(f"the screenshot failed: {exc.message.splitlines()[0]}") from exc
        if len(png) > MAX_SCREENSHOT_BYTES:
            raise CaptureError(f"the screenshot is over {MAX_SCREENSHOT_BYTES} bytes")
        self.log.record("screenshot", inputs={"url": url, "full_page": opts.full_page,
                                              "viewport": list(opts.viewport), "page_height": height,
                                              "clipped_to_height": MAX_SCREENSHOT_HEIGHT if clip else None},
                        outputs=[self._file(SCREENSHOT_PATH, png)])

    async def _main_document(self, response: Response | None) -> dict[str, Any]:
        if response is None:
            return {}
        exchange = next((e for e in reversed(self.recorder.exchanges) if e.url == response.url), None)
        return {"url": response.url, "status": response.status,
                "browser_server_addr": await response.server_addr(),
                "browser_security_details": await response.security_details(),
                "browser_security_details_note": "the browser's TLS peer is the capture's own recorder; the "
                                                 "origin's TLS is under upstream",
                "warc_response_id": exchange.response_id if exchange else None,
                "upstream": None if exchange is None else {"ip": exchange.ip, "port": exchange.port,
                                                           "tls": exchange.tls}}

    async def _unrecorded(self) -> list[dict[str, Any]]:
        """Responses the browser got over the network from anywhere but this capture's recorder."""
        found = []
        for response in self._responses:
            if not response.url.startswith(("http://", "https://")) or response.from_service_worker:
                continue
            try:
                address = await response.server_addr()
            except PlaywrightError:
                continue
            if address and (address["ipAddress"], address["port"]) != ("127.0.0.1", self.recorder.port):
                found.append({"url": response.url, "server_addr": address})
        return found

    def _proxy_record(self, unrecorded: list[dict[str, Any]]) -> dict[str, Any]:
        facts = self.browser.facts
        sink = next((f for f in facts.flags if f.startswith("--proxy-server=")), None)
        others = [f for f in facts.flags if f.startswith(("--proxy-server=", "--proxy-pac-url=")) and f != sink]
        return {"kind": "tiezheng-recorder", "part_of_capture_tool": True,
                "third_party_proxy": bool(others),
                "all_traffic_via_recorder": not unrecorded,
                "recorder": self.recorder.record(),
                "browser_wide_proxy": {"flag": sink, "what": "a local sink of the capture tool that refuses every "
                                                            "request not made through a context's recorder",
                                       "refused_during_capture": self.browser.refused_background_requests(
                                           self.started)},
                "environment_proxy_variables_removed": list(facts.removed_env),
                "egress": self.options.egress.record() if self.options.egress else None,
                "raw_fetch": (f"through egress {self.options.egress.name!r} (a CONNECT tunnel per connection)"
                              if self.options.egress else "direct connection")
                             + " (httpx with trust_env off: environment proxies are not used)"}

    def _network(self, raw: RawFetch, robots: dict[str, Any] | None, url: str, response: Response | None,
                 main: dict[str, Any], unrecorded: list[dict[str, Any]]) -> dict[str, Any]:
        chain = _redirect_chain(response)
        certificates = dict(self.recorder.certificates)
        return {
            "format": NETWORK_FORMAT,
            "requested_url": self.url,
            "policy": self.policy.record(),
            "dns": self.resolver.records(),
            "fetch": {"client": "httpx", "final_url": raw.final.url, "status": raw.final.status,
                      "hops": [hop.record() for hop in raw.hops], "content_encoding": raw.body.record()},
            "redirects": raw.redirects(),
            "robots": robots,
            "browser": {"navigated_to": self.url, "final_url": url, "redirects": chain, "main_document": main},
            "traffic": {"exchanges": [e.record() for e in self.recorder.exchanges],
                        "refused": self.recorder.refused, "unrecorded_responses": unrecorded,
                        "all_via_recorder": not unrecorded, "recorded_at": utc_iso(datetime.now(UTC))},
            "certificates": certificates,
        }
