// The attachments of an RFC 5322 message, by content type: enough MIME (RFC 2045/2046) to read the
// parts a sent notice carries. Like Python's EmailMessage.iter_attachments, it looks at the direct
// parts of the top multipart and leaves out its body (the first inline text part).

import { bytesOf, binary } from "./dkim.js";

function splitHead(text) {
  const crlf = text.indexOf("\r\n\r\n"), lf = text.indexOf("\n\n");
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return [text.slice(0, crlf), text.slice(crlf + 4)];
  if (lf >= 0) return [text.slice(0, lf), text.slice(lf + 2)];
  return [text, ""];
}

function headers(head) {
  const found = new Map();
  for (const line of head.replace(/\r?\n(?=[ \t])/g, "").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      if (!found.has(name)) found.set(name, line.slice(colon + 1).trim());
    }
  }
  return found;
}

function parameter(value, name) {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, "i").exec(value);
  return m ? (m[1] ?? m[2]).replace(/\\(.)/g, "$1") : null;
}

function decodeBase64(text) {
  const clean = text.replace(/[^A-Za-z0-9+/]/g, "");
  const usable = clean.slice(0, clean.length - (clean.length % 4 === 1 ? 1 : 0));
  return bytesOf(atob(usable + "=".repeat((4 - (usable.length % 4)) % 4)));
}

const decodeQuotedPrintable = (text) =>
  bytesOf(text.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))));

function part(text) {
  const [head, body] = splitHead(text);
  const h = headers(head);
  const contentType = h.get("content-type") ?? "text/plain";
  return { type: contentType.split(";")[0].trim().toLowerCase() || "text/plain", contentType,
    disposition: (h.get("content-disposition") ?? "").split(";")[0].trim().toLowerCase(),
    encoding: (h.get("content-transfer-encoding") ?? "7bit").trim().toLowerCase(), body };
}

function subparts(whole) {
  const boundary = parameter(whole.contentType, "boundary");
  if (!boundary) return [];
  const delimiter = `--${boundary}`;
  const lines = whole.body.split(/(?<=\n)/);
  const parts = [];
  let current = null;
  for (const line of lines) {
    const bare = line.replace(/[ \t]*\r?\n$/, "");
    if (bare === delimiter || bare === `${delimiter}--`) {
      if (current !== null) parts.push(current.replace(/\r?\n$/, ""));
      if (bare.endsWith("--") && bare !== delimiter) { current = null; break; }
      current = "";
    } else if (current !== null) {
      current += line;
    }
  }
  return parts.map(part);
}

/** { content type: decoded bytes } of the message's attachments; the first of each type wins. */
export function attachments(messageBytes) {
  const top = part(binary(messageBytes));
  if (!top.type.startsWith("multipart/") || top.type === "multipart/alternative") return new Map();
  const found = new Map();
  let bodySeen = false;
  for (const p of subparts(top)) {
    const inlineText = ["text/plain", "text/html"].includes(p.type) && p.disposition !== "attachment";
    if (!bodySeen && inlineText) { bodySeen = true; continue; }
    if (p.type.startsWith("multipart/") || found.has(p.type)) continue;
    const data = p.encoding === "base64" ? decodeBase64(p.body)
      : p.encoding === "quoted-printable" ? decodeQuotedPrintable(p.body) : bytesOf(p.body);
    found.set(p.type, data);
  }
  return found;
}
