// Entry point of the bundle: mount the verifier on #tz-verify when the page has loaded.
import { mount } from "./ui.js";

function start() {
  const root = document.getElementById("tz-verify");
  if (root) window.tiezhengVerifier = mount(root);
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
