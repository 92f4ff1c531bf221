// Build the in-browser verifier: dist/verifier.js and dist/verifier.css (served on /verify) and
// dist/verify.html, one self-contained page (script and styles inlined, hashed in its own CSP) that
// works from file:// with no network. Run from the repository root: node verifier/browser/build.mjs
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// Both languages carry the same words: a key missing in one would show as a raw key on the page.
const { STRINGS } = await import("./src/strings.js");
const missing = [...Object.keys(STRINGS.en).filter((k) => !(k in STRINGS.zh)).map((k) => `zh lacks ${k}`),
  ...Object.keys(STRINGS.zh).filter((k) => !(k in STRINGS.en)).map((k) => `en lacks ${k}`)];
if (missing.length) throw new Error(`page strings differ between languages: ${missing.join(", ")}`);
const dist = join(here, "dist");
mkdirSync(dist, { recursive: true });
const result = await build({
  entryPoints: [join(here, "src/main.js")], bundle: true, format: "iife", target: "chrome120", minify: true,
  legalComments: "eof", loader: { ".toml": "text" }, write: false, logLevel: "warning",
});
// "</script" inside the bundle would end the inline script early; escape it as JS allows.
const script = result.outputFiles[0].text.replaceAll("</script", "<\\/script");
const style = readFileSync(join(here, "src/style.css"), "utf8");
const hash = (text) => createHash("sha256").update(text, "utf8").digest("base64");
writeFileSync(join(dist, "verifier.js"), script);
writeFileSync(join(dist, "verifier.css"), style);
const page = readFileSync(join(here, "page.html"), "utf8")
  .replace("__SCRIPT_HASH__", hash(script)).replace("__STYLE_HASH__", hash(style))
  .replace("__STYLE__", () => style).replace("__SCRIPT__", () => script);
writeFileSync(join(dist, "verify.html"), page);
console.log(`built ${join("verifier/browser/dist", "verify.html")} (${Math.round(page.length / 1024)} KiB)`);
