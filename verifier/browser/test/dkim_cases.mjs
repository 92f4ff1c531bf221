// Run the page's DKIM code (src/dkim.js) on cases given as JSON: [{ name, message (base64), record,
// checked_at (ISO 8601 or null: when the key record was fetched) }]. Prints one JSON line: { name: "pass" | "fail: reason" , ... }.
// Node's WebCrypto is the browser's API, so the code under test runs unchanged.
import { readFileSync } from "node:fs";
import { verifyDkim } from "../src/dkim.js";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = {};
for (const c of cases) {
  const message = Uint8Array.from(atob(c.message), (ch) => ch.charCodeAt(0));
  try {
    const pass = await verifyDkim(message, c.record, { checkedAt: c.checked_at ? new Date(c.checked_at) : null });
    results[c.name] = pass.unsignedBodyBytes ? `pass (${pass.unsignedBodyBytes} unsigned)` : "pass";
  } catch (e) {
    results[c.name] = `fail: ${e.message}`;
  }
}
console.log(JSON.stringify(results));
