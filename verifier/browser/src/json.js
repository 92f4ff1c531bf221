// Strict JSON, read the way the package format demands: UTF-8 only, no duplicate keys, no
// NaN/Infinity, bounded nesting. JSON.parse silently keeps the last of two equal keys, which would let
// two readers see two different manifests, so this is a small parser of its own.

import { Unusable } from "./errors.js";

export const MAX_JSON_DEPTH = 32;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Parse `bytes` as strict JSON; throws Unusable naming `what`. Objects have no prototype. */
export function parseJson(bytes, what) {
  let text;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new Unusable(`${what} is not UTF-8`);
  }
  if (text.charCodeAt(0) === 0xfeff) throw new Unusable(`${what} is not valid JSON: unexpected UTF-8 BOM`);
  let at = 0;
  const fail = (why) => { throw new Unusable(`${what} is not valid JSON: ${why} at char ${at}`); };
  const space = () => { while (at < text.length && " \t\n\r".includes(text[at])) at++; };

  function string() {
    at++; // opening quote
    let out = "";
    for (;;) {
      if (at >= text.length) fail("unterminated string");
      const c = text[at++];
      if (c === '"') return out;
      if (c === "\\") {
        const e = text[at++];
        const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
        if (simple !== undefined) out += simple;
        else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.substr(at, 4))) {
          out += String.fromCharCode(parseInt(text.substr(at, 4), 16));
          at += 4;
        } else fail("bad escape");
      } else if (c < " ") fail("control character in string");
      else out += c;
    }
  }

  function number() {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(at, at + 400));
    if (!m) fail("bad value");
    at += m[0].length;
    return Number(m[0]);
  }

  function value(depth) {
    if (depth > MAX_JSON_DEPTH) throw new Unusable(`${what}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    space();
    const c = text[at];
    if (c === "{") {
      at++;
      const obj = Object.create(null);
      space();
      if (text[at] === "}") { at++; return obj; }
      for (;;) {
        space();
        if (text[at] !== '"') fail("expected a key");
        const key = string();
        if (Object.prototype.hasOwnProperty.call(obj, key)) throw new Unusable(`duplicate JSON key '${key}'`);
        space();
        if (text[at++] !== ":") fail("expected ':'");
        obj[key] = value(depth + 1);
        space();
        const next = text[at++];
        if (next === "}") return obj;
        if (next !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      at++;
      const list = [];
      space();
      if (text[at] === "]") { at++; return list; }
      for (;;) {
        list.push(value(depth + 1));
        space();
        const next = text[at++];
        if (next === "]") return list;
        if (next !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, at)) { at += word.length; return v; }
    }
    if (text.startsWith("NaN", at) || text.startsWith("Infinity", at) || text.startsWith("-Infinity", at)) {
      throw new Unusable(`non-standard JSON constant in ${what}`);
    }
    return number();
  }

  const result = value(1);
  space();
  if (at !== text.length) fail("extra data");
  return result;
}
