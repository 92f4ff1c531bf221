// The page: drop a package (and a trust file), read the verdict. Everything runs here, in the
// reader's browser; the package is never sent anywhere. Package strings reach the page only through
// textContent, never as HTML.

import { verifyPackage } from "./verify.js";
import { loadDefaultTrust, userTrust } from "./trust.js";
import { STRINGS } from "./strings.js";

// Every character that controls a terminal or a layout instead of showing as a glyph (controls,
// ESC/CSI/OSC, bidi embeddings, overrides and isolates, zero-width and line separators, lone
// surrogates) is shown as a visible code: that a package carried one is itself a finding.
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
export function displayText(value) {
  return String(value).replace(HIDDEN, (c) => {
    const point = c.codePointAt(0);
    if (point < 0x100) return `\\x${point.toString(16).padStart(2, "0")}`;
    if (point < 0x10000) return `\\u${point.toString(16).padStart(4, "0")}`;
    return `\\U${point.toString(16).padStart(8, "0")}`;
  });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = displayText(v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(typeof c === "string" ? displayText(c) : c);
  return node;
}

const readFile = (file) => file.arrayBuffer().then((b) => new Uint8Array(b));

// A certificate's QR code opens /verify?fingerprint=HEX: the evidence the reader expects. Only a
// SHA-256 value (64 hex digits) is taken; anything else is named as a bad link, never compared.
export function expectedFingerprint(search) {
  const raw = new URLSearchParams(search).get("fingerprint");
  if (raw === null || raw.trim() === "") return null;
  const hex = raw.trim().toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? { hex, valid: true } : { hex: raw, valid: false };
}

export function mount(root) {
  let lang = root.dataset.lang === "zh" || (!root.dataset.lang && navigator.language.startsWith("zh")) ? "zh" : "en";
  // The findings, legal bases and "what this proves" are in both languages unless the reader picks one.
  let findingsLang = ["zh", "en", "both"].includes(root.dataset.findings) ? root.dataset.findings : "both";
  const t = (key) => STRINGS[lang][key] ?? key;
  // One text in the languages the reader asked for: Chinese first, then English, each marked with its
  // language so a screen reader and the fonts treat it right. Package strings stay textContent.
  const bilingual = (tag, zh, en, attrs = {}) => {
    const parts = [], inner = tag === "td" ? "div" : "span";
    if (findingsLang !== "en" && zh) parts.push(el(inner, { class: "tz-zh", lang: "zh-CN", text: zh }));
    if (findingsLang !== "zh" || !zh) parts.push(el(inner, { class: "tz-en", lang: "en", text: en }));
    return el(tag, attrs, ...parts);
  };
  // A page word in the languages of the findings: the verdict is said in both when they are.
  const inFindings = (key) => (findingsLang === "both" ? [STRINGS.zh[key], STRINGS.en[key]] : [STRINGS[findingsLang][key]]);
  let trust = null, trustHash = null, trustSource = null, lastFile = null;
  // On the service, the page's CSP lets it reach only its own origin; an RPC the reader opts into is
  // added by reloading with ?rpc=URL, so the server's policy names that one node and nothing else.
  const state = { rpcOptIn: Boolean(root.dataset.rpc), rpc: root.dataset.rpc || "" };
  const expected = expectedFingerprint(window.location.search);

  function render() {
    root.replaceChildren();
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    const langButton = el("button", { type: "button", id: "tz-lang", text: t("other_language") });
    langButton.addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; render(); });
    const packageInput = el("input", { id: "tz-package", type: "file", accept: ".wacz,.zip,application/zip" });
    const trustInput = el("input", { id: "tz-trust", type: "file", accept: ".toml,text/plain" });
    const rpcOptIn = el("input", { id: "tz-rpc-optin", type: "checkbox" });
    const rpcInput = el("input", { id: "tz-rpc", type: "url", placeholder: "https://…", disabled: "" });
    rpcOptIn.checked = Boolean(state.rpcOptIn);
    rpcInput.disabled = !state.rpcOptIn;
    rpcInput.value = state.rpc || "";
    rpcOptIn.addEventListener("change", () => { state.rpcOptIn = rpcOptIn.checked; rpcInput.disabled = !rpcOptIn.checked; });
    rpcInput.addEventListener("change", () => {
      state.rpc = rpcInput.value.trim();
      if (root.dataset.rpcReload === "yes" && state.rpcOptIn && state.rpc && state.rpc !== root.dataset.rpc) {
        const url = new URL(window.location.href);
        url.searchParams.set("rpc", state.rpc);
        window.location.assign(url.toString());
      }
    });
    const trustLine = el("p", { id: "tz-trust-status", class: "tz-muted" });
    trustLine.textContent = displayText(trustHash ? `${t("trust_used")}: ${trustSource} · SHA-256 ${trustHash}` : t("no_trust"));
    const findingsSelect = el("select", { id: "tz-findings-lang" },
      ...["both", "zh", "en"].map((v) => el("option", { value: v, text: t(`findings_${v}`) })));
    findingsSelect.value = findingsLang;
    findingsSelect.addEventListener("change", () => { findingsLang = findingsSelect.value; render(); });
    const header = el("header", { class: "tz-head" }, el("h1", { text: t("title") }),
      el("div", { class: "tz-langs" }, el("label", { class: "tz-field", for: "tz-findings-lang" },
        el("span", { text: t("findings_language") }), findingsSelect), langButton));
    const expectedLine = !expected ? null : expected.valid
      ? el("p", { id: "tz-expected", class: "tz-expected", "data-fingerprint": expected.hex },
        el("strong", { text: `${t("expected_fingerprint")}: ` }), el("span", { class: "tz-mono tz-wrap", text: expected.hex }))
      : el("p", { id: "tz-expected", class: "tz-error", text: `${t("fingerprint_bad_link")}: ${expected.hex}` });
    const controls = el("section", { class: "tz-controls" },
      el("p", { class: "tz-intro", text: t("intro") }), expectedLine,
      el("label", { class: "tz-drop", for: "tz-package", id: "tz-drop" }, el("strong", { text: t("drop_package") }), packageInput),
      el("label", { class: "tz-field", for: "tz-trust" }, el("span", { text: t("trust_file") }), trustInput),
      root.dataset.trustUrl ? el("button", { type: "button", id: "tz-operator-trust", text: t("load_operator_trust") }) : null,
      trustLine,
      el("label", { class: "tz-field" }, rpcOptIn, el("span", { text: t("rpc_optin") })), rpcInput);
    const progress = el("p", { id: "tz-progress", class: "tz-muted", hidden: "" });
    const result = el("section", { id: "tz-result", "aria-live": "polite" });
    root.append(header, controls, progress, result);
    packageInput.addEventListener("change", () => {
      if (!packageInput.files.length) return;
      const file = packageInput.files[0];
      packageInput.value = ""; // choosing the same file again must verify again
      run(file);
    });
    trustInput.addEventListener("change", async () => {
      if (!trustInput.files.length) return;
      const file = trustInput.files[0];
      await setTrust(await readFile(file), file.name);
    });
    const operator = root.querySelector("#tz-operator-trust");
    if (operator) operator.addEventListener("click", loadOperatorTrust);
    const drop = root.querySelector("#tz-drop");
    for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
    for (const name of ["dragleave", "drop"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.remove("over"); });
    drop.addEventListener("drop", (e) => { const f = e.dataTransfer?.files; if (f && f.length) run(f[0]); });
    if (state.report) show(state.report);
  }

  async function setTrust(bytes, source) {
    const line = root.querySelector("#tz-trust-status");
    try {
      const loaded = await userTrust(bytes, source);
      trust = loaded.trust; trustHash = loaded.sha256; trustSource = source;
      line.textContent = displayText(`${t("trust_used")}: ${source} · SHA-256 ${trustHash}`);
      line.dataset.sha256 = trustHash;
      if (lastFile) await run(lastFile);
    } catch (e) {
      trust = null; trustHash = null;
      line.textContent = displayText(`${t("trust_error")}: ${e.message}`);
    }
  }

  async function loadOperatorTrust() {
    try {
      // Same origin only (CSP connect-src 'self'): the operator's published trust file.
      const response = await fetch(root.dataset.trustUrl, { credentials: "omit" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      await setTrust(new Uint8Array(await response.arrayBuffer()), root.dataset.trustUrl);
    } catch (e) {
      root.querySelector("#tz-trust-status").textContent = displayText(`${t("trust_error")}: ${e.message}`);
    }
  }

  async function run(file) {
    try {
      await runUnguarded(file);
    } catch (e) {
      // Never a silent page: an unexpected error is shown as one line.
      const progress = root.querySelector("#tz-progress");
      progress.hidden = false;
      progress.textContent = displayText(`${t("internal_error")}: ${e && e.message ? e.message : e}`);
    }
  }

  async function runUnguarded(file) {
    lastFile = file;
    const progress = root.querySelector("#tz-progress");
    progress.hidden = false;
    progress.textContent = t("verifying");
    root.querySelector("#tz-result").replaceChildren();
    const started = performance.now();
    const bytes = await readFile(file);
    const rpc = state.rpcOptIn && state.rpc ? state.rpc : null;
    const report = await verifyPackage(bytes, trust ?? (await loadDefaultTrust()), { rpc });
    report.elapsed_ms = performance.now() - started;
    report.trust_sha256 = trustHash;
    state.report = report;
    progress.hidden = true;
    show(report);
  }

  function show(report) {
    const result = root.querySelector("#tz-result");
    const verdict = el("div", { id: "tz-verdict", class: `tz-verdict v-${report.verdict.replace(/[^a-z]+/g, "-")}`,
      "data-verdict": report.verdict, text: `${t("verdict")}: ${inFindings(`verdict_${report.verdict}`).join(" / ")}` });
    const explain = bilingual("p", STRINGS.zh[`explain_${report.verdict}`], STRINGS.en[`explain_${report.verdict}`], { class: "tz-explain" });
    const facts = el("dl", { class: "tz-facts" },
      el("dt", { text: t("evidence_id") }), el("dd", { class: "tz-mono", text: report.evidence_id ?? "—" }),
      el("dt", { text: t("fingerprint") }), el("dd", { class: "tz-mono", text: report.fingerprint ?? "—" }),
      el("dt", { text: t("trust_used") }), el("dd", { class: "tz-mono", text: report.trust_sha256 ? `SHA-256 ${report.trust_sha256}` : t("no_trust") }));
    result.replaceChildren(verdict, explain, facts);
    if (expected && expected.valid) result.insertBefore(fingerprintMatch(report.fingerprint), verdict);
    const failing = report.checks.filter((c) => c.status === "fail");
    if (failing.length) {
      const groups = [...new Set(failing.map((c) => c.group))];
      result.append(el("div", { id: "tz-failed", class: "tz-error" },
        el("strong", { text: `${t("failed_checks")}: ${failing.map((c) => `${c.id} ${t(`check_${c.id}`)}`).join(", ")}` }),
        el("ul", {}, ...groups.map((g) => bilingual("li", STRINGS.zh[`means_${g}`], STRINGS.en[`means_${g}`])))));
    }
    if (report.error) result.append(el("p", { class: "tz-error", id: "tz-error", text: `${t("unusable_reason")}: ${report.error}` }));
    if (report.development_trust.length) {
      result.append(el("div", { class: "tz-notice", id: "tz-development" }, el("strong", { text: t("development_trust") }),
        el("ul", {}, ...report.development_trust.map((d, i) => bilingual("li", report.development_trust_zh[i], d)))));
    }
    const body = el("tbody");
    for (const c of report.checks) {
      body.append(el("tr", { "data-check": c.id, "data-status": c.status },
        el("td", {}, el("strong", { text: c.id }), ` ${t(`check_${c.id}`)}`),
        el("td", {}, el("span", { class: `tz-badge s-${c.status}`, text: t(`status_${c.status}`) })),
        bilingual("td", c.reason_zh, c.reason, { class: "tz-wrap tz-finding" }),
        bilingual("td", c.basis_zh, c.basis, { class: "tz-basis" })));
    }
    result.append(el("table", { class: "tz-checks" }, el("thead", {}, el("tr", {},
      el("th", { text: t("check") }), el("th", { text: t("status") }), el("th", { text: t("finding") }), el("th", { text: t("basis") }))), body));
    if (report.proves.length) { // only a verified report carries these
      result.append(el("h2", { text: t("proves") }),
        el("ul", { id: "tz-proves" }, ...report.proves.map((p, i) => bilingual("li", report.proves_zh[i], p))),
        el("h2", { text: t("does_not_prove") }),
        el("ul", { id: "tz-does-not-prove", class: "tz-muted" }, ...report.does_not_prove.map((p, i) => bilingual("li", report.does_not_prove_zh[i], p))));
    }
    result.append(el("p", { class: "tz-muted", id: "tz-elapsed", "data-ms": String(Math.round(report.elapsed_ms ?? 0)),
      text: `${t("elapsed")}: ${Math.round(report.elapsed_ms ?? 0)} ms · ${t("local_only")}` }));
  }

  // Whether this package is the evidence the link names: the fingerprint the verifier recomputed
  // from the manifest, compared with the one in the link. Said plainly, before the verdict.
  function fingerprintMatch(actual) {
    const same = typeof actual === "string" && actual.toLowerCase() === expected.hex;
    const text = same ? t("fingerprint_matches") : actual ? t("fingerprint_differs") : t("fingerprint_none");
    return el("div", { id: "tz-fingerprint-match", class: same ? "tz-match" : "tz-error", "data-match": same ? "yes" : "no" },
      el("strong", { text }),
      el("dl", { class: "tz-facts" },
        el("dt", { text: t("expected_fingerprint") }), el("dd", { class: "tz-mono", text: expected.hex }),
        el("dt", { text: t("package_fingerprint") }), el("dd", { class: "tz-mono", text: actual ?? "—" })));
  }

  render();
  return { verifyBytes: (bytes, trustObj) => verifyPackage(bytes, trustObj) };
}
