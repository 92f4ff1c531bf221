/* Shared by the pages: the translated strings, small DOM helpers and authenticated downloads. */
"use strict";
window.TZ = (function () {
  const strings = JSON.parse(document.getElementById("tz-strings").textContent);
  function t(key) { return strings[key] !== undefined ? strings[key] : key; }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }
  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace("Z", " UTC");
  }
  function saveBlob(blob, filename) {
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error.message + " (" + body.error.code + ")";
    } catch (e) { /* not JSON */ }
    return response.status + " " + response.statusText;
  }
  function filenameOf(response, fallback) {
    const header = response.headers.get("content-disposition") || "";
    const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header);
    return match ? decodeURIComponent(match[1]) : fallback;
  }
  return { t, el, when, saveBlob, errorMessage, filenameOf, lang: document.body.dataset.lang };
})();
