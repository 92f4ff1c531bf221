// HTTP/1.x responses as the WARC recorded them, and the codings that can be removed from them: the
// chunked transfer coding and the gzip/deflate content codings, with an output limit (a recorded
// body is hostile input). A coding that cannot be undone here (br, zstd) is left in place.

import { inflateSync, unzlibSync } from "fflate";
import { CheckFailure } from "./errors.js";
import { gunzip } from "./warc.js";

export const MAX_DECODED_BYTES = 256 << 20;
const MAX_HEAD_BYTES = 256 << 10;
const MAX_INTERIM = 10;
const latin1 = new TextDecoder("latin1");
const httpError = (why) => new CheckFailure(why);

function headEnd(message, from) {
  const limit = Math.min(message.length, from + MAX_HEAD_BYTES);
  for (let i = from; i < limit; i++) {
    if (message[i] !== 0x0a) continue;
    if (message[i + 1] === 0x0a) return [i, i + 2];
    if (message[i + 1] === 0x0d && message[i + 2] === 0x0a) return [i, i + 3];
  }
  throw httpError("no end of the HTTP head");
}

/** Parse a complete HTTP/1.x response; returns { status, headers: [[name, value]], body }. */
export function parseResponse(message) {
  let offset = 0;
  for (let i = 0; i <= MAX_INTERIM; i++) {
    const [end, bodyStart] = headEnd(message, offset);
    const lines = latin1.decode(message.subarray(offset, end)).split(/\r?\n/);
    const m = /^(HTTP\/\d(?:\.\d)?) (\d{3})(?: (.*))?$/.exec(lines[0].replace(/\r$/, ""));
    if (!m) throw httpError(`not an HTTP status line: ${JSON.stringify(lines[0].slice(0, 60))}`);
    const headers = lines.slice(1).filter((l) => l.trim()).map((l) => {
      const colon = l.indexOf(":");
      if (colon <= 0) throw httpError(`malformed header line ${JSON.stringify(l.slice(0, 40))}`);
      return [l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim()];
    });
    const status = Number(m[2]);
    if (status >= 100 && status < 200 && status !== 101) { offset = bodyStart; continue; }
    return { status, headers, body: message.subarray(bodyStart) };
  }
  throw httpError(`more than ${MAX_INTERIM} interim responses`);
}

const header = (response, name) => {
  const found = response.headers.filter(([n]) => n === name).map(([, v]) => v);
  return found.length ? found.join(", ") : null;
};
const tokens = (response, name) => (header(response, name) ?? "").split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);

/** Remove the chunked transfer coding; throws CheckFailure when malformed, truncated or too large. */
export function dechunk(body, limit = MAX_DECODED_BYTES) {
  const parts = [];
  let size = 0, at = 0;
  for (;;) {
    const end = body.indexOf(0x0a, at);
    if (end < 0) throw httpError("chunked body ends inside a chunk-size line");
    const line = latin1.decode(body.subarray(at, end)).replace(/\r$/, "");
    const m = /^([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?$/.exec(line);
    if (!m) throw httpError(`malformed chunk-size line ${JSON.stringify(line.slice(0, 40))}`);
    const chunk = parseInt(m[1], 16);
    at = end + 1;
    if (chunk === 0) break;
    if (size + chunk > limit) throw httpError(`dechunked body exceeds ${limit} bytes`);
    if (at + chunk > body.length) throw httpError("chunked body is truncated");
    parts.push(body.subarray(at, at + chunk));
    size += chunk;
    at += chunk;
    if (body[at] === 0x0d && body[at + 1] === 0x0a) at += 2;
    else if (body[at] === 0x0a) at += 1;
    else throw httpError("chunk data is not followed by CRLF");
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}

function decodeOne(data, coding) {
  try {
    if (coding === "gzip" || coding === "x-gzip") return gunzip(data);
    if (coding === "deflate") {
      try { return unzlibSync(data); } catch { return inflateSync(data); } // RFC 9110 says zlib; some send raw
    }
  } catch (e) {
    throw httpError(`${coding} body cannot be decoded: ${e.message}`);
  }
  return data;
}

/** The body with the transfer coding and the decodable content codings removed, last applied first. */
export function decodeBody(response, limit = MAX_DECODED_BYTES) {
  const transfer = tokens(response, "transfer-encoding");
  let body;
  if (transfer.length && transfer[transfer.length - 1] === "chunked") body = dechunk(response.body, limit);
  else if (header(response, "content-length") !== null) {
    const length = Number(header(response, "content-length"));
    if (!Number.isInteger(length)) throw httpError("Content-Length is not a number");
    if (length < 0 || length > response.body.length) throw httpError(`body is shorter than its Content-Length ${length}`);
    body = response.body.subarray(0, length);
  } else body = response.body;
  const codings = tokens(response, "content-encoding");
  while (codings.length && ["gzip", "x-gzip", "deflate", "identity"].includes(codings[codings.length - 1])) {
    body = decodeOne(body, codings.pop());
    if (body.length > limit) throw httpError(`body exceeds ${limit} bytes`);
  }
  return body;
}
