/* /app: a tenant's dashboard. The API key lives in sessionStorage (this tab only) and goes in a header. */
"use strict";
(function () {
  const { t, el, when, saveBlob, errorMessage, filenameOf } = window.TZ;
  const KEY = "tiezheng.apiKey";
  const POLL_MS = 2000;
  const state = { page: 1, pages: 1, status: "", q: "", timer: null, last: "" };
  const $ = (id) => document.getElementById(id);

  function key() { return sessionStorage.getItem(KEY); }
  function api(path, options) {
    const headers = Object.assign({}, (options && options.headers) || {}, { Authorization: "Bearer " + key() });
    return fetch(path, Object.assign({}, options || {}, { headers }));
  }

  function signedIn(yes) {
    state.last = "";
    $("login").hidden = yes;
    $("dashboard").hidden = !yes;
    if (yes) refresh(); else clearTimeout(state.timer);
  }

  async function login(event) {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("api-key").value.trim());
    const response = await api("/v1/evidence?page=1");
    if (!response.ok) {
      sessionStorage.removeItem(KEY);
      $("login-error").hidden = false;
      $("login-error").textContent = t("login_failed") + " " + await errorMessage(response);
      return;
    }
    $("login-error").hidden = true;
    $("api-key").value = "";
    signedIn(true);
  }

  async function download(path, fallbackName, button) {
    button.disabled = true;
    try {
      const response = await api(path);
      if (!response.ok) { alert(await errorMessage(response)); return; }
      saveBlob(await response.blob(), filenameOf(response, fallbackName));
    } finally { button.disabled = false; }
  }

  async function preview(item) {
    const dialog = $("preview-dialog");
    const response = await api("/v1/evidence/" + encodeURIComponent(item.id) + "/screenshot");
    const img = $("preview-img");
    if (img.src) URL.revokeObjectURL(img.src);
    if (response.ok) {
      img.src = URL.createObjectURL(await response.blob());
      img.hidden = false;
      $("preview-empty").hidden = true;
    } else {
      img.removeAttribute("src");
      img.hidden = true;
      $("preview-empty").hidden = false;
    }
    dialog.showModal();
  }

  function card(item) {
    const base = "/v1/evidence/" + encodeURIComponent(item.id);
    const name = item.evidence_id || item.id;
    const meta = [t("created") + " " + when(item.created_at)];
    if (item.sealed_at) meta.push(t("sealed_at") + " " + when(item.sealed_at));
    if (item.fingerprint) meta.push(t("fingerprint") + " " + item.fingerprint.slice(0, 16) + "…");
    if (item.batch_id) meta.push(t("batch") + " " + item.batch_id);
    const actions = el("div", { class: "ev-actions" });
    const button = (label, handler, action) => {
      const b = el("button", { type: "button", class: "secondary", "data-action": action, text: label });
      b.addEventListener("click", () => handler(b));
      actions.append(b);
    };
    if (item.package_sha256) {
      button(t("preview"), () => preview(item), "preview");
      button(t("package"), (b) => download(base + "/package", name + ".wacz", b), "package");
    }
    if (item.status === "sealed") {
      button(t("certificate"), (b) => download(base + "/certificate.pdf", name + "-certificate.pdf", b),
        "certificate");
    }
    return el("li", { "data-id": item.id, "data-status": item.status },
      el("div", { class: "ev-head" }, el("span", { class: "ev-title", text: item.title || item.id }),
        el("span", { class: "badge " + item.status, text: t(item.status) })),
      el("div", { class: "ev-meta mono", text: item.id }),
      el("div", { class: "ev-meta", text: meta.join(" · ") }),
      item.error ? el("div", { class: "ev-meta error", text: item.error }) : null,
      item.note ? el("div", { class: "ev-meta", text: t("note") + ": " + item.note }) : null,
      actions);
  }

  async function refresh() {
    clearTimeout(state.timer);
    if (!key()) return;
    const query = new URLSearchParams({ page: String(state.page) });
    if (state.status) query.set("status", state.status);
    if (state.q) query.set("q", state.q);
    let response;
    try { response = await api("/v1/evidence?" + query); } catch (e) { response = null; }
    if (response && response.status === 401) { sessionStorage.removeItem(KEY); signedIn(false); return; }
    if (response && response.ok) {
      const text = await response.text();
      const body = JSON.parse(text);
      state.pages = body.pages;
      // Re-render only when something changed, so a button is never swapped out under a click.
      if (text !== state.last) $("evidence-list").replaceChildren(...body.data.map(card));
      state.last = text;
      $("empty").hidden = body.data.length > 0;
      $("page-info").textContent = t("page") + " " + body.page + " / " + body.pages + " · " + body.count;
      $("prev").disabled = state.page <= 1;
      $("next").disabled = state.page >= state.pages;
    }
    // Poll live status; a pending item becomes sealed within a batch interval.
    state.timer = setTimeout(refresh, POLL_MS);
  }

  async function submit(form, request) {
    const message = form.querySelector(".form-msg");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    message.textContent = t("busy");
    try {
      const response = await request();
      if (response.status === 202) {
        const body = await response.json();
        message.textContent = t("accepted") + ": " + body.evidence_ids.join(", ");
        form.reset();
        state.page = 1;
        refresh();
      } else {
        message.textContent = t("error") + ": " + await errorMessage(response);
      }
    } finally { button.disabled = false; }
  }

  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); signedIn(false); });
  $("capture-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const urls = $("urls").value.split(/\s+/).filter(Boolean);
    submit(event.target, () => api("/v1/captures", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ urls, note: $("capture-note").value }) }));
  });
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = new FormData();
    for (const file of $("files").files) body.append("file", file, file.name);
    body.append("note", $("upload-note").value);
    submit(event.target, () => api("/v1/uploads", { method: "POST", body }));
  });
  $("status-filter").addEventListener("change", (e) => { state.status = e.target.value; state.page = 1; refresh(); });
  $("search").addEventListener("input", (e) => { state.q = e.target.value.trim(); state.page = 1; refresh(); });
  $("refresh").addEventListener("click", refresh);
  $("prev").addEventListener("click", () => { if (state.page > 1) { state.page -= 1; refresh(); } });
  $("next").addEventListener("click", () => { if (state.page < state.pages) { state.page += 1; refresh(); } });
  signedIn(Boolean(key()));
})();
