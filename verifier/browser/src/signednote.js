// C2SP signed-note and tlog-checkpoint, read from the spec text: a note is UTF-8 text ending in a
// newline, a blank line, then one line per signature, "— <key name> <base64(key hash ‖ signature)>".
// The key hash is the first four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ Ed25519 public key). A
// checkpoint's text is the log's origin, its size in decimal and its base64 root, one a line, then
// optional extension lines. Lines signed by keys we do not know are ignored, as the spec asks.

import { concat, encoder, equal, fromBase64, sha256, toHex } from "./bytes.js";
import { CheckFailure } from "./errors.js";
import { pyRepr } from "./pyrepr.js";

const SIGNATURE_PREFIX = "\u2014 ";
const KEY_HASH_BYTES = 4;
const MAX_NOTE_BYTES = 1 << 20;
const NAME = /^[^\s+\u2014]+$/;
const SIZE = /^(0|[1-9][0-9]{0,19})$/;
const short = (text) => pyRepr(text.slice(0, 40));

export async function keyHash(name, publicKey) {
  return (await sha256(concat(encoder.encode(name), Uint8Array.of(0x0a, 0x01), publicKey))).slice(0, KEY_HASH_BYTES);
}

/** { text, signatures: [{ name, keyHash, signature }] }; throws CheckFailure when malformed. */
export function parseNote(data) {
  if (data.length > MAX_NOTE_BYTES) throw new CheckFailure(`note is ${data.length} bytes, over ${MAX_NOTE_BYTES}`);
  let whole;
  try { whole = new TextDecoder("utf-8", { fatal: true }).decode(data); } catch { throw new CheckFailure("note is not UTF-8"); }
  const split = whole.lastIndexOf("\n\n");
  if (split < 0 || !whole.endsWith("\n")) throw new CheckFailure("note has no blank line before its signatures, or no final newline");
  const text = whole.slice(0, split + 1);
  const signatures = [];
  for (const line of whole.slice(split + 2, -1).split("\n")) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new CheckFailure(`note signature line does not start with an em dash: ${short(line)}`);
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.lastIndexOf(" ");
    const name = space < 0 ? "" : rest.slice(0, space);
    let raw;
    try { raw = fromBase64(rest.slice(space + 1)); } catch { throw new CheckFailure(`note signature of ${pyRepr(name)} is not base64`); }
    if (!NAME.test(name) || raw.length < KEY_HASH_BYTES) throw new CheckFailure(`note signature line is malformed: ${short(line)}`);
    signatures.push({ name, keyHash: raw.slice(0, KEY_HASH_BYTES), signature: raw.slice(KEY_HASH_BYTES) });
  }
  if (!signatures.length) throw new CheckFailure("note carries no signature");
  return { text, signatures };
}

/** Throw CheckFailure unless the Ed25519 key `publicKey`, named `name`, signed `note`. */
export async function verifyNote(note, name, publicKey) {
  const wanted = await keyHash(name, publicKey);
  const mine = note.signatures.filter((s) => s.name === name && equal(s.keyHash, wanted));
  if (!mine.length) {
    const names = note.signatures.map((s) => `${s.name} (${toHex(s.keyHash)})`).join(", ");
    throw new CheckFailure(`note is not signed by key ${name} (${toHex(wanted)}); it is signed by ${names}`);
  }
  let valid = false;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    valid = await crypto.subtle.verify({ name: "Ed25519" }, key, mine[0].signature, encoder.encode(note.text));
  } catch {
    valid = false;
  }
  if (!valid) throw new CheckFailure(`note signature by ${name} does not verify`);
}

/** A signed checkpoint: [{ origin, size, root, extensions }, note]; throws CheckFailure when malformed. */
export function parseCheckpoint(data) {
  const note = parseNote(data);
  const lines = note.text.split("\n");
  if (lines.length < 4 || lines[lines.length - 1] !== "") throw new CheckFailure("checkpoint has fewer than three lines, or no final newline");
  const [origin, size, root, ...extensions] = lines.slice(0, -1);
  if (!origin || !SIZE.test(size)) throw new CheckFailure("checkpoint origin is empty or its size is not a decimal number");
  let rootHash;
  try { rootHash = fromBase64(root); } catch { throw new CheckFailure("checkpoint root is not base64"); }
  if (rootHash.length !== 32) throw new CheckFailure(`checkpoint root is ${rootHash.length} bytes, expected 32`);
  if (extensions.some((line) => !line)) throw new CheckFailure("checkpoint has an empty extension line");
  return [{ origin, size: Number(size), root: rootHash, extensions }, note];
}
