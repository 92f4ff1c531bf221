"""Scripted steps: the short, declarative "preset program" a capture runs on the page before its screenshot.

A step list is JSON or YAML: a list (or ``{"steps": [...]}``) of steps, each a line of text or an object:

    scroll                          scroll to the bottom and back (lazy content), like the automatic pass
    click SELECTOR                  click the first element matching SELECTOR (it must exist)
    wait_for SELECTOR | MS          wait until SELECTOR is visible, or MS milliseconds
    type SELECTOR TEXT              fill the field with TEXT; never a password field (refused: the text is
                                    published in the manifest, so no secret may be typed). In this line
                                    form SELECTOR is one word; the object form takes any selector
    dismiss_cookie_banner           click a consent button if a cookie banner is shown (none: noted, not an error)
    expand_all SELECTOR             click every visible SELECTOR, again as new ones appear, until none is left

Objects spell the same: ``{"action": "click", "selector": "#more"}``, ``{"action": "wait_for", "ms": 500}``,
``{"action": "type", "selector": "#q", "text": "shoes"}``. Selectors are Playwright selectors (CSS by
default); in YAML, quote a line that holds " #" (``- "click #more"``), or the rest is a comment.
``preset:NAME`` names a step list shipped in ``evidence/step_presets/``.

The list is checked once (``parse_steps``: count, lengths, waits), before anything runs. Each step is then
logged as one call-log line with the viewport screenshot taken after it (``evidence/step-NN.png``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.capture_errors import CaptureError
from verifier.capture_format import SCRIPTED_STEP, STEP_SCREENSHOT_PATH

if TYPE_CHECKING:  # parsing a step list (the API does) needs no browser; running one loads Playwright
    from playwright.async_api import Page

ACTIONS = ("scroll", "click", "wait_for", "type", "dismiss_cookie_banner", "expand_all")
MAX_STEPS = 20
MAX_STEPS_FILE_BYTES = 64 << 10
MAX_SELECTOR_CHARS = 500
MAX_TEXT_CHARS = 1000
MAX_WAIT_MS = 30_000
#: How long a step waits for its element to appear (and for a click to be possible).
STEP_ELEMENT_TIMEOUT_MS = 10_000
#: After each step: the page is settled when none of its requests has been in flight for SETTLE_QUIET_MS,
#: waited for at most SETTLE_AFTER_STEP_MS. (Playwright's "networkidle" load state cannot serve: once a
#: page reached it, waiting for it returns at once, whatever a click started since.)
SETTLE_AFTER_STEP_MS = 3_000
SETTLE_QUIET_MS = 300
SETTLE_POLL_MS = 50
MAX_EXPAND_CLICKS = 100
MAX_EXPAND_ROUNDS = 10
PRESET_PREFIX = "preset:"
PRESETS_PACKAGE = "evidence.step_presets"

#: Consent buttons of common consent platforms, then buttons inside an element named like a cookie banner.
COOKIE_BANNER_SCRIPT = """() => {
  const known = ['#onetrust-accept-btn-handler', '#didomi-notice-agree-button', '.fc-cta-consent',
                 '#CybotCookiebotDialogBodyLevelButtonLevelOptinAllowAll', '[data-testid="cookie-accept"]',
                 'button[aria-label*="accept" i]', 'button[aria-label*="同意"]'];
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  for (const sel of known) {
    const el = document.querySelector(sel);
    if (el && visible(el)) { el.click(); return sel; }
  }
  const words = /^(accept|accept all|agree|i agree|allow all|ok|got it|同意|接受|我知道了|知道了|确定)$/i;
  const banners = document.querySelectorAll('[id*="cookie" i], [class*="cookie" i], [id*="consent" i], '
                                            + '[class*="consent" i], [id*="gdpr" i], [class*="gdpr" i]');
  for (const banner of banners) {
    const buttons = banner.querySelectorAll('button, a, [role="button"], input[type="button"], input[type="submit"]');
    for (const el of buttons) {
      const label = (el.innerText || el.value || '').trim();
      if (words.test(label) && visible(el)) { el.click(); return 'button "' + label.slice(0, 40) + '"'; }
    }
  }
  return null;
}"""
#: Refused for ``type``: password and payment fields, and one-time codes.
SECRET_FIELD_SCRIPT = """el => {
  const type = (el.getAttribute('type') || '').toLowerCase();
  const auto = (el.getAttribute('autocomplete') || '').toLowerCase();
  if (type === 'password') return 'a password field';
  if (/password|one-time-code|cc-/.test(auto)) return 'a field marked autocomplete="' + auto.slice(0, 40) + '"';
  return null;
}"""  # noqa: S105 (a script that finds secret fields; it holds none)


class StepError(CaptureError):
    """A step list that cannot be used, or a step that could not be done; the message names the step."""


@dataclass(frozen=True)
class Step:
    action: str
    selector: str | None = None
    text: str | None = None
    ms: int | None = None

    def record(self) -> dict[str, Any]:
        """The step as the manifest and the call log state it (only the fields it uses)."""
        out: dict[str, Any] = {"action": self.action}
        for name in ("selector", "text", "ms"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def describe(self) -> str:
        parts = [self.action, self.selector or "", repr(self.text) if self.text is not None else "",
                 f"{self.ms} ms" if self.ms is not None else ""]
        return " ".join(p for p in parts if p)


def _selector(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StepError(f"{where} needs a selector")
    if len(value) > MAX_SELECTOR_CHARS or "\n" in value:
        raise StepError(f"{where}: the selector must be one line of at most {MAX_SELECTOR_CHARS} characters")
    return value.strip()


def _step_from_text(line: str, where: str) -> Step:
    action, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    if action in ("scroll", "dismiss_cookie_banner"):
        if rest:
            raise StepError(f"{where}: {action} takes nothing after it")
        return _step_from_object({"action": action}, where)
    if action == "wait_for":
        return _step_from_object({"action": action, "ms" if rest.isdigit() else "selector":
                                  int(rest) if rest.isdigit() else rest}, where)
    if action == "type":
        selector, _, text = rest.partition(" ")
        return _step_from_object({"action": action, "selector": selector, "text": text}, where)
    return _step_from_object({"action": action, "selector": rest}, where)


def _step_from_object(item: Mapping[str, Any], where: str) -> Step:
    action = item.get("action")
    if action not in ACTIONS:
        raise StepError(f"{where}: unknown action {str(action)[:40]!r} (known: {', '.join(ACTIONS)})")
    unknown = set(item) - {"action", "selector", "text", "ms"}
    if unknown:
        raise StepError(f"{where}: unknown field {sorted(unknown)[0][:40]!r}")
    if action in ("scroll", "dismiss_cookie_banner"):
        if set(item) != {"action"}:
            raise StepError(f"{where}: {action} takes no selector, text or ms")
        return Step(action)
    if action == "wait_for":
        ms = item.get("ms")
        if ms is not None:
            if "selector" in item or isinstance(ms, bool) or not isinstance(ms, int) or not 0 < ms <= MAX_WAIT_MS:
                raise StepError(f"{where}: wait_for takes a selector or ms from 1 to {MAX_WAIT_MS}")
            return Step(action, ms=ms)
        return Step(action, selector=_selector(item.get("selector"), f"{where} (wait_for)"))
    selector = _selector(item.get("selector"), f"{where} ({action})")
    if action == "type":
        text = item.get("text")
        if not isinstance(text, str) or not text or len(text) > MAX_TEXT_CHARS:
            raise StepError(f"{where}: type needs a text of 1 to {MAX_TEXT_CHARS} characters")
        return Step(action, selector=selector, text=text)
    if "text" in item or "ms" in item:
        raise StepError(f"{where}: {action} takes only a selector")
    return Step(action, selector=selector)


def parse_steps(raw: object) -> tuple[Step, ...]:
    """Check a step list (already loaded from JSON/YAML). Raises StepError naming the first bad step."""
    if isinstance(raw, Mapping) and set(raw) <= {"steps", "description"}:
        raw = raw.get("steps")
    if not isinstance(raw, list):
        raise StepError("the steps must be a list (or an object with a \"steps\" list)")
    if not 1 <= len(raw) <= MAX_STEPS:
        raise StepError(f"give 1 to {MAX_STEPS} steps, not {len(raw)}")
    steps = []
    for number, item in enumerate(raw, start=1):
        where = f"step {number}"
        if isinstance(item, str):
            steps.append(_step_from_text(item, where))
        elif isinstance(item, Mapping):
            steps.append(_step_from_object(item, where))
        else:
            raise StepError(f"{where} is neither a line of text nor an object")
    return tuple(steps)


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in resources.files(PRESETS_PACKAGE).iterdir()
                  if p.name.endswith(".json"))


def load_steps(spec: str) -> tuple[Step, ...]:
    """The steps of ``preset:NAME`` or of a JSON/YAML file. Raises StepError with a one-line reason."""
    if spec.startswith(PRESET_PREFIX):
        name = spec[len(PRESET_PREFIX):]
        if name not in preset_names():
            raise StepError(f"no step preset {name[:40]!r} (presets: {', '.join(preset_names())})")
        text = resources.files(PRESETS_PACKAGE).joinpath(f"{name}.json").read_text("utf-8")
        return parse_steps(json.loads(text))
    path = Path(spec)
    try:
        if path.stat().st_size > MAX_STEPS_FILE_BYTES:
            raise StepError(f"the steps file is over {MAX_STEPS_FILE_BYTES} bytes")
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StepError(f"cannot read the steps file {spec[:200]}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_steps(parse_steps_text(text))


def parse_steps_text(text: str) -> object:
    """JSON, else YAML (safe loader). Raises StepError."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StepError(f"the steps are neither JSON nor YAML: {str(exc).splitlines()[0][:200]}") from None


#: What run_steps needs from the capture: a scroll pass, a file writer and the call log.
ScrollPass = Callable[["Page"], Any]
WriteFile = Callable[[str, bytes], dict[str, Any]]
LogStep = Callable[..., str]


class _Traffic:
    """The page's requests in flight, counted from its own events while the steps run."""

    def __init__(self, page: Page) -> None:
        self.page, self.in_flight = page, 0
        self.quiet_since = asyncio.get_running_loop().time()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, _request: object) -> None:
        self.in_flight += 1

    def _ended(self, _request: object) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if self.in_flight == 0:
            self.quiet_since = asyncio.get_running_loop().time()

    async def settle(self) -> bool:
        """Wait until no request was in flight for SETTLE_QUIET_MS; False when SETTLE_AFTER_STEP_MS ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_AFTER_STEP_MS / 1000
        await asyncio.sleep(SETTLE_POLL_MS / 1000)  # let a click's own request start
        while loop.time() < deadline:
            if self.in_flight == 0 and loop.time() - self.quiet_since >= SETTLE_QUIET_MS / 1000:
                return True
            await asyncio.sleep(SETTLE_POLL_MS / 1000)
        return False

    def close(self) -> None:
        self.page.remove_listener("request", self._started)
        self.page.remove_listener("requestfinished", self._ended)
        self.page.remove_listener("requestfailed", self._ended)


async def run_steps(page: Page, steps: tuple[Step, ...], *, scroll: ScrollPass, write_file: WriteFile,
                    log: LogStep) -> None:
    """Run each step, take its viewport screenshot and log both. Raises StepError naming the step."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    traffic = _Traffic(page)
    try:
        for number, step in enumerate(steps, start=1):
            where = f"step {number} ({step.describe()[:120]})"
            try:
                outcome = await _run_one(page, step, scroll, where, traffic)
            except PlaywrightTimeout as exc:
                raise StepError(f"{where}: nothing matched within {STEP_ELEMENT_TIMEOUT_MS // 1000} s") from exc
            except PlaywrightError as exc:
                raise StepError(f"{where} failed: {exc.message.splitlines()[0]}") from exc
            outcome["settled"] = await traffic.settle()
            try:
                shot = await page.screenshot(type="png", full_page=False, timeout=STEP_ELEMENT_TIMEOUT_MS)
            except PlaywrightError as exc:
                raise StepError(f"{where}: the screenshot failed: {exc.message.splitlines()[0]}") from exc
            log(SCRIPTED_STEP, inputs={"index": number, **step.record(), "url": page.url}, outcome=outcome,
                outputs=[write_file(STEP_SCREENSHOT_PATH.format(number), shot)])
    finally:
        traffic.close()


async def _run_one(page: Page, step: Step, scroll: ScrollPass, where: str, traffic: _Traffic) -> dict[str, Any]:
    if step.action == "scroll":
        return dict(await scroll(page))
    if step.action == "wait_for":
        if step.ms is not None:
            await page.wait_for_timeout(step.ms)
            return {"waited_ms": step.ms}
        assert step.selector is not None
        await page.wait_for_selector(step.selector, state="visible", timeout=STEP_ELEMENT_TIMEOUT_MS)
        return {"visible": True}
    if step.action == "dismiss_cookie_banner":
        clicked = await page.evaluate(COOKIE_BANNER_SCRIPT)
        return {"dismissed": clicked is not None, "clicked": clicked}
    assert step.selector is not None
    locator = page.locator(step.selector)
    if step.action == "click":
        matched = await locator.count()
        await locator.first.click(timeout=STEP_ELEMENT_TIMEOUT_MS)
        return {"matched": matched, "clicked": 1}
    if step.action == "type":
        element = locator.first
        await element.wait_for(state="visible", timeout=STEP_ELEMENT_TIMEOUT_MS)
        secret = await element.evaluate(SECRET_FIELD_SCRIPT)
        if secret is not None:
            raise StepError(f"{where}: refused to type into {secret}; secrets never enter a capture (the typed "
                            "text is published in the manifest)")
        await element.fill(step.text or "", timeout=STEP_ELEMENT_TIMEOUT_MS)
        return {"typed_characters": len(step.text or "")}
    return await _expand_all(page, step.selector, traffic)


async def _expand_all(page: Page, selector: str, traffic: _Traffic) -> dict[str, Any]:
    """Click each visible match once; repeat for matches that appear after, within the bounds."""
    from playwright.async_api import Error as PlaywrightError

    clicked_set = await page.evaluate_handle("() => new WeakSet()")
    clicks, rounds = 0, 0
    while rounds < MAX_EXPAND_ROUNDS and clicks < MAX_EXPAND_CLICKS:
        rounds += 1
        clicked_now = 0
        for handle in await page.query_selector_all(selector):
            if clicks >= MAX_EXPAND_CLICKS:
                break
            fresh = await page.evaluate("([seen, el]) => !seen.has(el) && (seen.add(el), true)",
                                        [clicked_set, handle])
            if not fresh or not await handle.is_visible():
                continue
            try:
                await handle.click(timeout=STEP_ELEMENT_TIMEOUT_MS)
            except PlaywrightError:
                continue  # detached or covered by the time it was reached: the next round looks again
            clicks += 1
            clicked_now += 1
        if clicked_now == 0:
            break
        await traffic.settle()  # what the clicks loaded may hold more to expand
    await clicked_set.dispose()
    return {"clicked": clicks, "rounds": rounds}
