// WARC records of archive/data.warc.gz: a record is a version line, `Name: value`
// lines, a blank line, Content-Length bytes of block and CRLF CRLF. Gzip members (usually one per
// record) are read one after the other.

import { gunzipSync } from "fflate";
import { CheckFailure } from "./errors.js";
import { crc32 } from "./zip.js";

export const WARC_PATH = "archive/data.warc.gz";
const MAX_HEADER_BYTES = 64 << 10;
const MAX_HEADER_LINES = 200;
const MAX_RECORDS = 200_000;
const MAX_MEMBER_BYTES = 256 << 20;
// Candidate member ends tried before giving up: hostile data full of gzip magic must stay cheap.
const MAX_BOUNDARY_TRIES = 64;
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

// Browsers' DecompressionStream refuses a second gzip member ("junk after the end"), and fflate's
// gunzip reads only the first, so members are delimited here: a member ends where the next gzip
// header starts and its own trailer (CRC-32 and size) matches what it inflated to.
export function gunzip(data) {
  const parts = [];
  let at = 0;
  while (at < data.length) {
    if (data[at] !== 0x1f || data[at + 1] !== 0x8b || data[at + 2] !== 0x08) throw new CheckFailure("WARC stream is damaged: not a gzip member");
    let member = null;
    let tries = 0;
    for (let end = at + 18; end <= data.length && !member; end++) {
      if (end !== data.length && !(data[end] === 0x1f && data[end + 1] === 0x8b && data[end + 2] === 0x08)) continue;
      if (++tries > MAX_BOUNDARY_TRIES) break;
      const view = new DataView(data.buffer, data.byteOffset + end - 8, 8);
      const crc = view.getUint32(0, true), size = view.getUint32(4, true);
      // fflate allocates what the trailer claims and never grows it, so this bounds the memory too.
      if (size > MAX_MEMBER_BYTES) continue;
      try {
        const out = gunzipSync(data.subarray(at, end));
        if (out.length === size && crc32(out) === crc) member = [out, end];
      } catch {
        // not this boundary: the deflate data ran past it or stopped short
      }
    }
    if (!member) throw new CheckFailure("WARC stream is damaged: a gzip member does not end well");
    parts.push(member[0]);
    at = member[1];
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}

function lineEnd(data, at) {
  const limit = Math.min(data.length, at + MAX_HEADER_BYTES);
  for (let i = at; i < limit; i++) if (data[i] === 0x0a) return i + 1;
  return limit;
}

/** Return [{ type, targetUri, ipAddress, recordId, block }] for every record; throws CheckFailure when malformed. */
export async function warcRecords(compressed) {
  const data = gunzip(compressed);
  const records = [];
  let at = 0;
  for (let number = 0; ; number++) {
    let end = lineEnd(data, at);
    while (at < data.length && (end - at === 1 || (end - at === 2 && data[at] === 0x0d))) { at = end; end = lineEnd(data, at); }
    if (at >= data.length) return records;
    if (number === MAX_RECORDS) throw new CheckFailure(`more than ${MAX_RECORDS} records`);
    const first = latin1.decode(data.subarray(at, end));
    if (!first.startsWith("WARC/")) throw new CheckFailure(`record ${number} does not start with a WARC version line`);
    const headers = {};
    let total = end - at;
    at = end;
    for (let lines = 0; ; lines++) {
      if (lines === MAX_HEADER_LINES) throw new CheckFailure(`record ${number}: more than ${MAX_HEADER_LINES} WARC header lines`);
      if (at >= data.length) throw new CheckFailure(`record ${number}: file ends inside the WARC headers`);
      end = lineEnd(data, at);
      total += end - at;
      if (total > MAX_HEADER_BYTES) throw new CheckFailure(`record ${number}: WARC header block over ${MAX_HEADER_BYTES} bytes`);
      const line = utf8.decode(data.subarray(at, end));
      at = end;
      if (line === "\r\n" || line === "\n") break;
      const colon = line.indexOf(":");
      if (colon < 0) throw new CheckFailure(`record ${number}: malformed WARC header line`);
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = headers["content-length"];
    if (!/^\+?\d+$/.test(length ?? "")) throw new CheckFailure(`record ${number} has no valid Content-Length`);
    const blockStart = at;
    at += Number(length);
    if (at > data.length) throw new CheckFailure(`record ${number}: file ends inside a block`);
    if (!(data[at] === 0x0d && data[at + 1] === 0x0a && data[at + 2] === 0x0d && data[at + 3] === 0x0a)) {
      throw new CheckFailure(`record ${number} is not followed by CRLF CRLF`);
    }
    at += 4;
    records.push({ type: headers["warc-type"] ?? "", targetUri: headers["warc-target-uri"] ?? "",
      ipAddress: headers["warc-ip-address"] ?? "", recordId: headers["warc-record-id"] ?? "",
      block: data.subarray(blockStart, blockStart + Number(length)) });
  }
}
