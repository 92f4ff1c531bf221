// A small, bounded reader of WebM (Matroska) files, as verifier/webm.py reads them: how long the video
// is and how many frames it holds. Only the EBML header's DocType, Info (TimestampScale, Duration),
// the video's pixel size and every SimpleBlock/Block timestamp (Cluster Timestamp + the block's
// relative one) are read; everything else is skipped by its size. Master elements are walked as one
// flat stream, so sized and unknown-sized Clusters read alike. A malformed file throws CheckFailure
// with the words of the Python reader.

import { CheckFailure } from "./errors.js";
import { pyRepr } from "./pyrepr.js";

export const MAX_WEBM_BYTES = 512 << 20;
const MAX_ELEMENTS = 4_000_000;
const MAX_ID_BYTES = 4, MAX_SIZE_BYTES = 8;
const DEFAULT_TIMESTAMP_SCALE_NS = 1_000_000;

const EBML_HEADER = 0x1A45DFA3, DOC_TYPE = 0x4282;
const SEGMENT = 0x18538067, INFO = 0x1549A966, TIMESTAMP_SCALE = 0x2AD7B1, DURATION = 0x4489;
const TRACKS = 0x1654AE6B, TRACK_ENTRY = 0xAE, VIDEO = 0xE0, PIXEL_WIDTH = 0xB0, PIXEL_HEIGHT = 0xBA;
const CLUSTER = 0x1F43B675, CLUSTER_TIMESTAMP = 0xE7, SIMPLE_BLOCK = 0xA3, BLOCK_GROUP = 0xA0, BLOCK = 0xA1;
const WALKED = new Set([SEGMENT, INFO, TRACKS, TRACK_ENTRY, VIDEO, CLUSTER, BLOCK_GROUP]);
const UNKNOWN_SIZE_ALLOWED = new Set([SEGMENT, CLUSTER]);

const webmError = (why) => new CheckFailure(why);
const hexId = (id) => `0x${id.toString(16).toUpperCase()}`;

// [value, length, all ones] of the variable-length integer at `offset` (Numbers: a size past 2^53
// cannot fit a file under the limit anyway, and "all ones" is read from the bytes, not the value).
function vint(data, offset, maxBytes, keepMarker) {
  if (offset >= data.length) throw webmError(`truncated at byte ${offset}`);
  const first = data[offset];
  let length = 1;
  while (length <= maxBytes && !(first & (0x80 >> (length - 1)))) length++;
  if (length > maxBytes) throw webmError(`invalid variable-length integer at byte ${offset}`);
  if (offset + length > data.length) throw webmError(`truncated at byte ${offset}`);
  const mask = 0xFF >> length;
  let value = keepMarker ? first : first & mask;
  let allOnes = !keepMarker && (first & mask) === mask;
  for (let i = offset + 1; i < offset + length; i++) {
    value = value * 256 + data[i];
    allOnes &&= data[i] === 0xFF;
  }
  return [value, length, allOnes];
}

function uint(payload) {
  if (payload.length > 8) throw webmError("an unsigned integer element is longer than 8 bytes");
  return payload.reduce((value, byte) => value * 256 + byte, 0);
}

function float(payload) {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  if (payload.length === 4) return view.getFloat32(0);
  if (payload.length === 8) return view.getFloat64(0);
  if (!payload.length) return 0;
  throw webmError(`a float element is ${payload.length} bytes long (4 or 8 expected)`);
}

function blockTimestamp(payload) {
  const [, trackLength] = vint(payload, 0, MAX_SIZE_BYTES, false);
  if (payload.length < trackLength + 3) throw webmError("a block is shorter than its header");
  return new DataView(payload.buffer, payload.byteOffset + trackLength, 2).getInt16(0);
}

function docType(header) {
  let offset = 0;
  while (offset < header.length) {
    const [element, idLength] = vint(header, offset, MAX_ID_BYTES, true);
    const [size, sizeLength, unknown] = vint(header, offset + idLength, MAX_SIZE_BYTES, false);
    const start = offset + idLength + sizeLength;
    if (unknown || start + size > header.length) throw webmError("the EBML header is malformed");
    if (element === DOC_TYPE) {
      let end = start + size;
      while (end > start && header[end - 1] === 0) end--;
      return Array.from(header.subarray(start, end), (b) => (b < 0x80 ? String.fromCharCode(b) : "\uFFFD")).join("");
    }
    offset = start + size;
  }
  return "";
}

/**
 * Measure a WebM/Matroska file: { docType, durationSeconds (null when not stated), blocks,
 * lastBlockSeconds, width, height, spanSeconds }. Throws CheckFailure when it is not one or is malformed.
 */
export function readWebm(data) {
  if (data.length > MAX_WEBM_BYTES) throw webmError(`the file is over ${MAX_WEBM_BYTES} bytes`);
  if (!(data[0] === 0x1a && data[1] === 0x45 && data[2] === 0xdf && data[3] === 0xa3)) {
    throw webmError("it does not start with an EBML header (not a WebM/Matroska file)");
  }
  let type = "", scale = DEFAULT_TIMESTAMP_SCALE_NS, duration = null, width = null, height = null;
  let clusterTime = null, blocks = 0, lastBlock = 0, seenSegment = false;
  let offset = 0, elements = 0;
  while (offset < data.length) {
    if (++elements > MAX_ELEMENTS) throw webmError(`more than ${MAX_ELEMENTS} elements`);
    const [element, idLength] = vint(data, offset, MAX_ID_BYTES, true);
    const [size, sizeLength, unknown] = vint(data, offset + idLength, MAX_SIZE_BYTES, false);
    const start = offset + idLength + sizeLength;
    if (unknown && !UNKNOWN_SIZE_ALLOWED.has(element)) throw webmError(`element ${hexId(element)} at byte ${offset} has an unknown size`);
    if (!unknown && start + size > data.length) {
      throw webmError(`element ${hexId(element)} at byte ${offset} runs past the end of the file (truncated?)`);
    }
    if (WALKED.has(element)) {
      seenSegment ||= element === SEGMENT;
      if (element === CLUSTER) clusterTime = null;
      offset = start;
      continue;
    }
    const payload = data.subarray(start, start + size);
    offset = start + size;
    if (element === EBML_HEADER) type = docType(payload);
    else if (element === TIMESTAMP_SCALE) {
      scale = uint(payload);
      if (scale === 0) throw webmError("the TimestampScale is 0");
    } else if (element === DURATION) duration = float(payload);
    else if (element === PIXEL_WIDTH) width = uint(payload);
    else if (element === PIXEL_HEIGHT) height = uint(payload);
    else if (element === CLUSTER_TIMESTAMP) clusterTime = uint(payload);
    else if (element === SIMPLE_BLOCK || element === BLOCK) {
      if (clusterTime === null) throw webmError(`a block at byte ${start} comes before its Cluster's Timestamp`);
      blocks++;
      lastBlock = Math.max(lastBlock, clusterTime + blockTimestamp(payload));
    }
  }
  if (type !== "webm" && type !== "matroska") throw webmError(`the DocType is ${pyRepr(type.slice(0, 40))}, not webm`);
  if (!seenSegment) throw webmError("no Segment");
  if (duration !== null && !(duration >= 0 && duration < 1e15)) throw webmError("the Duration is not a sensible number");
  const seconds = scale / 1e9;
  const durationSeconds = duration === null ? null : duration * seconds;
  const lastBlockSeconds = lastBlock * seconds;
  return { docType: type, durationSeconds, blocks, lastBlockSeconds, width, height,
    spanSeconds: durationSeconds ?? lastBlockSeconds };
}
