// A strict reading of the package zip: one reading only (DESIGN §5). The central directory and the
// local headers are walked here, byte by byte, and must tile the file exactly: entry after entry
// from offset 0, then the central directory, then the end record. Anything another zip reader could
// read differently (bytes before, between or after, overlapping or concatenated archives, local and
// central headers that disagree, directories with data) makes the package unusable. fflate only
// inflates the bytes this module has delimited.

import { inflateSync } from "fflate";
import { Unusable, CheckFailure } from "./errors.js";

export const MAX_PACKAGE_BYTES = 1 << 30; // what a browser tab can hold; the CLI allows more
export const MAX_FILES = 10_000;
export const MAX_ENTRY_BYTES = 2 ** 31;
export const MAX_TOTAL_BYTES = 2 ** 30; // inflation per package: also what one browser tab can hold
export const MAX_COMPRESSION_RATIO = 200;
export const RATIO_EXEMPT_BYTES = 1 << 20;
export const MAX_NAME_LENGTH = 255;
const EOCD = 0x06054b50, CENTRAL = 0x02014b50, LOCAL = 0x04034b50, DESCRIPTOR = 0x08074b50;
const SAFE_SEGMENT = /^[A-Za-z0-9._-]+$/;
// Flags a package may use: deflate options, data descriptor, UTF-8 names. Anything else is unread meaning.
const ALLOWED_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800;
// Info-ZIP Unicode path and comment extras: some readers apply them, others do not (two readings).
const UNICODE_EXTRAS = new Set([0x7075, 0x6375]);
const utf8 = new TextDecoder("utf-8", { fatal: true });

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data) {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function entryName(raw, flags) {
  if (raw.length === 0) throw new Unusable("an entry has an empty name");
  let name;
  if (flags & 0x800) {
    try { name = utf8.decode(raw); } catch { throw new Unusable("an entry name is not valid UTF-8"); }
  } else {
    if (raw.some((b) => b > 0x7f)) throw new Unusable("an entry name is not ASCII and not marked UTF-8");
    name = String.fromCharCode(...raw);
  }
  if (name.length > MAX_NAME_LENGTH) throw new Unusable(`entry name longer than ${MAX_NAME_LENGTH} characters`);
  if (name.includes("\\") || name.includes("\0") || name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    throw new Unusable(`unsafe entry name ${JSON.stringify(name)} (absolute or not a plain relative path)`);
  }
  return name;
}

function checkFileName(name, externalAttr) {
  const segments = name.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new Unusable(`unsafe entry name ${JSON.stringify(name)} (path traversal)`);
  }
  if (!segments.every((s) => SAFE_SEGMENT.test(s))) {
    throw new Unusable(`entry name ${JSON.stringify(name)} has characters outside [A-Za-z0-9._-]`);
  }
  if (((externalAttr >>> 16) & 0o170000) === 0o120000) {
    throw new Unusable(`entry ${JSON.stringify(name)} is a symbolic link`);
  }
}

function findEnd(bytes, view) {
  // The end record must close the file: its comment runs exactly to the last byte.
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === EOCD && at + 22 + view.getUint16(at + 20, true) === bytes.length) return at;
  }
  throw new Unusable("not a zip file: no end-of-central-directory record at the end");
}

/** Read the central directory and local headers; returns a Zip. Throws Unusable. */
export function openZip(bytes) {
  if (bytes.length > MAX_PACKAGE_BYTES) throw new Unusable(`package is ${bytes.length} bytes, over the limit of ${MAX_PACKAGE_BYTES}`);
  if (bytes.length < 22) throw new Unusable("not a zip file: too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = findEnd(bytes, view);
  if (view.getUint16(end + 20, true) !== 0) throw new Unusable("the zip comment is not empty; a package carries none");
  const disk = view.getUint16(end + 4, true), cdDisk = view.getUint16(end + 6, true);
  const onDisk = view.getUint16(end + 8, true), count = view.getUint16(end + 10, true);
  const cdSize = view.getUint32(end + 12, true), cdOffset = view.getUint32(end + 16, true);
  if (disk !== 0 || cdDisk !== 0 || onDisk !== count) throw new Unusable("multi-disk zip archives are not packages");
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw new Unusable("ZIP64 archives are not read by the browser verifier (use tiezheng-verify)");
  }
  if (count > MAX_FILES) throw new Unusable(`package has ${count} entries, more than ${MAX_FILES}`);
  if (cdOffset + cdSize !== end) throw new Unusable("bytes between the central directory and its end record");
  const entries = new Map();
  const records = [];
  let at = cdOffset, total = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > end || view.getUint32(at, true) !== CENTRAL) throw new Unusable("damaged zip file: bad central directory");
    const flags = view.getUint16(at + 8, true), method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    let csize = view.getUint32(at + 20, true), size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true), extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true), externalAttr = view.getUint32(at + 38, true);
    let offset = view.getUint32(at + 42, true);
    const next = at + 46 + nameLength + extraLength + commentLength;
    if (next > end) throw new Unusable("damaged zip file: central directory runs past its end");
    const rawName = bytes.subarray(at + 46, at + 46 + nameLength);
    const where = `entry ${JSON.stringify(entryNameForMessage(rawName))}`;
    if (commentLength) throw new Unusable(`${where} has a comment; a package carries none`);
    checkExtras(view, at + 46 + nameLength, extraLength, where);
    if (flags & ~ALLOWED_FLAGS) throw new Unusable(`${where} uses zip flags 0x${flags.toString(16).padStart(4, "0")}, which this verifier does not read`);
    if (method === 0 && flags & 0x8) throw new Unusable(`${where} is stored with a data descriptor, which streaming readers cannot delimit`);
    const time = view.getUint32(at + 12, true);
    const big = [size, csize, offset].filter((v) => v === 0xffffffff).length;
    if (big) {
      const values = zip64Values(view, at + 46 + nameLength, extraLength, big);
      if (size === 0xffffffff) size = values.shift();
      if (csize === 0xffffffff) csize = values.shift();
      if (offset === 0xffffffff) offset = values.shift();
    }
    const name = entryName(rawName, flags);
    at = next;
    const record = { name, rawName, flags, method, crc, csize, size, offset, time, isDir: name.endsWith("/") };
    const unixMode = (externalAttr >>> 16) & 0o170000;
    if (!record.isDir && (externalAttr & 0x10 || unixMode === 0o040000)) {
      throw new Unusable(`${where} is marked as a directory but named as a file`);
    }
    records.push(record);
    if (record.isDir) {
      if (size !== 0 || csize > 2) throw new Unusable(`directory entry ${JSON.stringify(name)} carries data`);
      continue;
    }
    checkFileName(name, externalAttr);
    if (entries.has(name)) throw new Unusable(`duplicate entry name ${JSON.stringify(name)}`);
    if (flags & 0x1) throw new Unusable(`entry ${JSON.stringify(name)} is encrypted`);
    if (method !== 0 && method !== 8) throw new Unusable(`entry ${JSON.stringify(name)} uses an unsupported compression method`);
    if (size > MAX_ENTRY_BYTES) throw new Unusable(`entry ${JSON.stringify(name)} declares ${size} bytes, over ${MAX_ENTRY_BYTES}`);
    if (size > RATIO_EXEMPT_BYTES && size > MAX_COMPRESSION_RATIO * Math.max(csize, 1)) {
      throw new Unusable(`entry ${JSON.stringify(name)} has a compression ratio over ${MAX_COMPRESSION_RATIO} (zip bomb)`);
    }
    if (method === 0 && size !== csize) throw new Unusable(`stored entry ${JSON.stringify(name)} has two sizes`);
    total += size;
    if (total > MAX_TOTAL_BYTES) throw new Unusable(`package expands to more than ${MAX_TOTAL_BYTES} bytes`);
    entries.set(name, record);
  }
  if (at !== end) throw new Unusable("the central directory holds more than its entries");
  tileLocalHeaders(bytes, view, records, cdOffset);
  return new Zip(bytes, entries);
}

function tileLocalHeaders(bytes, view, records, cdOffset) {
  // Entries in file order must follow each other with no gap or overlap, from byte 0 to the directory.
  const ordered = [...records].sort((a, b) => a.offset - b.offset);
  let expected = 0;
  for (const r of ordered) {
    if (r.offset !== expected) {
      throw new Unusable(r.offset > expected ? "bytes before or between zip entries" : "overlapping zip entries");
    }
    const at = r.offset;
    if (at + 30 > cdOffset || view.getUint32(at, true) !== LOCAL) throw new Unusable(`no local header for ${JSON.stringify(r.name)}`);
    const flags = view.getUint16(at + 6, true), method = view.getUint16(at + 8, true);
    const nameLength = view.getUint16(at + 26, true), extraLength = view.getUint16(at + 28, true);
    const localName = bytes.subarray(at + 30, at + 30 + nameLength);
    checkExtras(view, at + 30 + nameLength, extraLength, `entry ${JSON.stringify(r.name)} (local header)`);
    if (method !== r.method || flags !== r.flags || view.getUint32(at + 10, true) !== r.time || !sameBytes(localName, r.rawName)) {
      throw new Unusable(`local and central headers of ${JSON.stringify(r.name)} disagree`);
    }
    if (!(flags & 0x8)) {
      const crc = view.getUint32(at + 14, true);
      let csize = view.getUint32(at + 18, true), size = view.getUint32(at + 22, true);
      if (size === 0xffffffff || csize === 0xffffffff) {
        // A ZIP64 local header carries both sizes in its extra field.
        [size, csize] = zip64Values(view, at + 30 + nameLength, extraLength, 2);
      }
      if (crc !== r.crc || csize !== r.csize || size !== r.size) {
        throw new Unusable(`local and central headers of ${JSON.stringify(r.name)} disagree on sizes or CRC`);
      }
    }
    r.dataStart = at + 30 + nameLength + extraLength;
    expected = r.dataStart + r.csize;
    if (flags & 0x8) expected = skipDescriptor(view, expected, r, cdOffset);
    if (expected > cdOffset) throw new Unusable(`entry ${JSON.stringify(r.name)} runs into the central directory`);
  }
  if (expected !== cdOffset) throw new Unusable("bytes between the last entry and the central directory");
}

function skipDescriptor(view, at, r, limit) {
  const signed = at + 4 <= limit && view.getUint32(at, true) === DESCRIPTOR ? 4 : 0;
  const base = at + signed;
  if (base + 12 > limit) throw new Unusable(`truncated data descriptor for ${JSON.stringify(r.name)}`);
  if (view.getUint32(base, true) !== r.crc || view.getUint32(base + 4, true) !== r.csize || view.getUint32(base + 8, true) !== r.size) {
    throw new Unusable(`data descriptor of ${JSON.stringify(r.name)} disagrees with the central directory`);
  }
  return base + 12;
}

function entryNameForMessage(raw) {
  return String.fromCharCode(...raw.subarray(0, 80)).replace(/[^\x20-\x7e]/g, "?");
}

// Extra fields must parse exactly, appear once each, and not rename the entry.
function checkExtras(view, start, length, where) {
  const seen = new Set();
  let at = start;
  const end = start + length;
  while (at < end) {
    if (at + 4 > end) throw new Unusable(`${where}: malformed extra field`);
    const id = view.getUint16(at, true), size = view.getUint16(at + 2, true);
    if (at + 4 + size > end) throw new Unusable(`${where}: malformed extra field`);
    if (seen.has(id)) throw new Unusable(`${where}: extra field 0x${id.toString(16).padStart(4, "0")} appears twice`);
    if (UNICODE_EXTRAS.has(id)) throw new Unusable(`${where}: carries an Info-ZIP Unicode name or comment, which readers apply differently`);
    seen.add(id);
    at += 4 + size;
  }
}

// ZIP64 extra field (0x0001): the 64-bit values of whichever header fields hold 0xFFFFFFFF, in order.
function zip64Values(view, start, length, wanted) {
  let at = start;
  const end = start + length;
  while (at + 4 <= end) {
    const id = view.getUint16(at, true), size = view.getUint16(at + 2, true);
    if (at + 4 + size > end) throw new Unusable("damaged zip file: extra field runs past its header");
    if (id === 0x0001) {
      if (size < 8 * wanted) throw new Unusable("damaged zip file: short ZIP64 extra field");
      const values = [];
      for (let i = 0; i < wanted; i++) {
        const value = view.getBigUint64(at + 4 + 8 * i, true);
        if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Unusable("zip entry size beyond what a package can hold");
        values.push(Number(value));
      }
      return values;
    }
    at += 4 + size;
  }
  if (wanted) throw new Unusable("damaged zip file: ZIP64 sizes without a ZIP64 extra field");
  return [];
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export class Zip {
  constructor(bytes, entries) {
    this.bytes = bytes;
    this.entries = entries; // name -> { size, csize, ... }; files only
  }

  has(name) { return this.entries.has(name); }

  get names() { return [...this.entries.keys()]; }

  /** Return the entry's bytes. Throws CheckFailure when it is over `limit` or damaged. */
  read(name, limit = Infinity) {
    const r = this.entries.get(name);
    if (!r) throw new CheckFailure(`the package has no ${name}`);
    if (r.size > limit) throw new CheckFailure(`${name} is ${r.size} bytes, over the limit of ${limit}`);
    const raw = this.bytes.subarray(r.dataStart, r.dataStart + r.csize);
    let data;
    if (r.method === 0) data = raw;
    else {
      try {
        data = inflateSync(raw, { out: new Uint8Array(r.size) });
      } catch (e) {
        throw new CheckFailure(`damaged zip entry ${name}: ${e.message}`);
      }
    }
    if (data.length !== r.size || crc32(data) !== r.crc) throw new CheckFailure(`damaged zip entry ${name}: bad CRC or size`);
    return data;
  }
}
