// Run transparency-dev/merkle's inclusion- and consistency-proof vectors through the page's RFC 9162 code.
// Usage: node verifier/browser/test/merkle_vectors.mjs DIR  (prints one line per failure; exit 1 if any)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { verifyConsistency, verifyInclusion } from "../src/merkle.js";

const b64 = (v) => Uint8Array.from(Buffer.from(v || "", "base64"));
const files = (dir) => readdirSync(dir).flatMap((n) => {
  const path = join(dir, n);
  return statSync(path).isDirectory() ? files(path) : n.endsWith(".json") ? [path] : [];
});

let failures = 0, count = 0;
for (const path of files(process.argv[2])) {
  const v = JSON.parse(readFileSync(path, "utf8"));
  let error = null;
  try {
    if ("size1" in v) await verifyConsistency(v.size1, v.size2, (v.proof || []).map(b64), b64(v.root1), b64(v.root2));
    else await verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, (v.proof || []).map(b64), b64(v.root));
  } catch (e) {
    error = e;
  }
  count++;
  if (Boolean(error) !== Boolean(v.wantErr)) {
    failures++;
    console.log(`${path}: ${v.wantErr ? "accepted a bad proof" : `rejected a good proof: ${error.message}`}`);
  }
}
console.log(`${count} vectors, ${failures} failures`);
process.exit(failures || !count ? 1 : 0);
