// The page's hosts-file reading, for a differential test against verifier/hosts_file.py.
// Usage: node verifier/browser/test/hosts_entries.mjs < cases.json, where cases.json is a list of
// [hosts text, own names]; prints, per case, the non-default entries as [{address, names}].
import { readFileSync } from "node:fs";
import { nonDefaultEntries } from "../src/hosts.js";

const cases = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(cases.map(([text, own]) => nonDefaultEntries(text, own))));
