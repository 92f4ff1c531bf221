/* /verify: send a dropped package to POST /v1/verify and show the report.
   Package data is only ever set as textContent (never innerHTML), and first passes through visible():
   controls, bidi overrides and other invisible format characters become visible codes, as in
   verifier/sanitize.py, so a package cannot reorder or hide what this page shows. */
"use strict";
(function () {
  const { t, el, when, saveBlob, errorMessage } = window.TZ;
  const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
  function visible(value) {
    if (value === null || value === undefined) return "";
    return String(value).replace(HIDDEN, (c) => {
      const code = c.codePointAt(0);
      if (code < 0x100) return "\\x" + code.toString(16).padStart(2, "0");
      if (code < 0x10000) return "\\u" + code.toString(16).padStart(4, "0");
      return "\\U" + code.toString(16).padStart(8, "0");
    });
  }
  const drop = document.getElementById("drop");
  const input = document.getElementById("package-input");
  const progress = document.getElementById("progress");
  const result = document.getElementById("result");
  const GROUPS = ["source", "path", "hash", "time"];
  let lastFile = null;

  function verdictClass(verdict) { return verdict.replace(/[^a-z]+/g, "-").replace(/-$/, ""); }
  function verdictKey(verdict) { return verdict.replace(" (offline)", "_offline").replace(" ", "_"); }
  function verdictText(verdict) { return t("verdict_" + verdictKey(verdict)) || verdict; }

  function checkTitle(check) {
    const key = "check_" + check.id;
    return t(key) !== key ? t(key) : check.title;
  }

  function checkTable(checks) {
    const head = el("thead", {}, el("tr", {}, el("th", { text: t("check") }), el("th", { text: t("status") }),
      el("th", { text: t("finding") }), el("th", { text: t("basis") })));
    const body = el("tbody");
    for (const check of checks) {
      const title = checkTitle(check);
      body.append(el("tr", { "data-check": check.id, "data-status": check.status },
        el("td", {}, el("strong", { text: visible(check.id) }), " " + visible(title)),
        el("td", {}, el("span", { class: "badge " + check.status, text: t("status_" + check.status) })),
        el("td", { class: "wrap", text: visible(check.reason) }),
        el("td", { class: "basis", text: visible(check.basis) })));
    }
    return el("table", { class: "checks" }, head, body);
  }

  function timeline(report) {
    const list = document.getElementById("timeline");
    list.replaceChildren();
    const facts = report.facts || {};
    const capture = facts.capture || {};
    const steps = [];
    if (capture.started_at) steps.push([t("tl_capture_start"), capture.started_at, ""]);
    if (capture.ended_at) steps.push([t("tl_capture_end"), capture.ended_at, ""]);
    for (const stamp of facts.timestamps || []) steps.push([t("tl_tsa"), stamp.gen_time, stamp.tsa || ""]);
    if (facts.anchor) {
      const a = facts.anchor;
      steps.push([t("tl_block") + " " + a.block_number, a.block_time,
        (a.chain || ("chain " + a.chain_id)) + " · tx " + a.tx_hash]);
    }
    for (const [label, time, detail] of steps) {
      list.append(el("li", {}, el("strong", { text: visible(label) }),
        el("time", { datetime: visible(time), text: visible(when(time)) }),
        detail ? el("span", { class: "mono wrap small", text: visible(detail) }) : null));
    }
  }

  function show(report) {
    result.hidden = false;
    const verdict = document.getElementById("verdict");
    verdict.className = "verdict " + verdictClass(report.verdict);
    verdict.dataset.verdict = report.verdict;
    verdict.textContent = t("verdict") + ": " + verdictText(report.verdict);
    document.getElementById("r-evidence").textContent = visible(report.evidence_id) || "—";
    document.getElementById("r-fingerprint").textContent = report.fingerprint || "—";
    const failing = report.checks.filter((c) => c.status === "fail");
    const failed = document.getElementById("r-failed");
    failed.hidden = failing.length === 0;
    failed.textContent = t("failed_checks") + ": " + failing.map((c) => c.id + " " + checkTitle(c)).join(", ");
    const error = document.getElementById("r-error");
    error.hidden = !report.error;
    error.textContent = report.error ? t("unusable_reason") + ": " + visible(report.error) : "";
    const findings = document.getElementById("r-findings");
    findings.hidden = !(report.findings || []).length;
    findings.querySelector("strong").textContent = t("findings_" + verdictKey(report.verdict));
    findings.querySelector("ul").replaceChildren(...(report.findings || []).map((f) => el("li", { text: visible(f) })));
    const dev = document.getElementById("r-development");
    dev.hidden = !(report.development_trust || []).length;
    dev.querySelector("ul").replaceChildren(
      ...(report.development_trust || []).map((d) => el("li", { text: visible(d) })));
    timeline(report);
    const groups = document.getElementById("groups");
    groups.replaceChildren();
    for (const group of GROUPS) {
      const checks = report.checks.filter((c) => c.group === group);
      if (checks.length) groups.append(el("section", { "data-group": group },
        el("h2", { text: t("group_" + group) }), checkTable(checks)));
    }
    // "What this proves" only for a verified package: the server sends proves = [] otherwise.
    const proves = report.proves || [];
    document.getElementById("scope").hidden = proves.length === 0;
    document.getElementById("proves").replaceChildren(...proves.map((p) => el("li", { text: visible(p) })));
    document.getElementById("does-not-prove").replaceChildren(
      ...(proves.length ? report.does_not_prove : []).map((p) => el("li", { text: visible(p) })));
    document.getElementById("r-trust").textContent = (report.trust_used || []).length
      ? t("trust_used") + ": " + report.trust_used.map((u) => visible(u.source) + " sha256 " + visible(u.sha256)).join("; ")
      : "";
    const pdf = document.getElementById("pdf");
    pdf.hidden = report.verdict === "unusable";
    pdf.disabled = document.body.dataset.pdf !== "yes";
    document.getElementById("pdf-note").textContent = pdf.disabled ? t("pdf_unavailable") : "";
  }

  function form(file) { const body = new FormData(); body.append("file", file, file.name); return body; }

  async function verify(file) {
    lastFile = file;
    result.hidden = true;
    progress.hidden = false;
    progress.textContent = t("verifying");
    try {
      const response = await fetch("/v1/verify", { method: "POST", body: form(file) });
      if (!response.ok) { progress.textContent = t("error") + ": " + await errorMessage(response); return; }
      progress.hidden = true;
      show(await response.json());
    } catch (e) {
      progress.textContent = t("error") + ": " + e;
    }
  }

  async function downloadPdf() {
    if (!lastFile) return;
    const response = await fetch("/v1/verify/certificate.pdf", { method: "POST", body: form(lastFile) });
    if (!response.ok) {
      document.getElementById("pdf-note").textContent = await errorMessage(response);
      return;
    }
    saveBlob(await response.blob(), lastFile.name.replace(/\.[^.]*$/, "") + "-verification.pdf");
  }

  input.addEventListener("change", () => { if (input.files.length) verify(input.files[0]); });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (event) => {
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) verify(files[0]);
  });
  document.getElementById("pdf").addEventListener("click", downloadPdf);
})();
