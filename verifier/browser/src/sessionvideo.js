// P2's part on the session video (evidence/session.webm), as verifier/checks/session_video.py words it:
// it is there when the log says it was recorded, it is a WebM this page can measure (webm.js), and it
// lasts at least the span of the logged steps it claims to cover. Each line's time is written when its
// step ends, so the span from the first covered line to the last is a lower bound of what the video
// must show. The duration is read from the file itself, never from the log's claim.

import { epochMicros, formatDuration, plural } from "./courttime.js";
import { CheckFailure, Unusable } from "./errors.js";
import { isObject } from "./json.js";
import { MAX_WEBM_BYTES, readWebm } from "./webm.js";

export const SESSION_VIDEO_PATH = "evidence/session.webm";
const VIDEO_START_STEP = "video-start", VIDEO_STEP = "video";
// Frame timing is quantised (a few frames a second) and the last line is written after the step ends.
const DURATION_TOLERANCE_SECONDS = 0.5;
// How far the stated Duration may run past the last frame (one frame interval and encoder padding).
const LAST_FRAME_SLACK_SECONDS = 1.5;
const rounded = (seconds) => Math.round(seconds * 1000) / 1000;

function covered(lines, line) {
  const covers = line.inputs.covers;
  const first = isObject(covers) ? covers.from_seq : undefined;
  const last = isObject(covers) ? covers.to_seq : undefined;
  if (!(Number.isSafeInteger(first) && Number.isSafeInteger(last) && first >= 0 && first <= last && last < line.seq && line.seq < lines.length)) {
    return "the 'video' log line does not name the lines it covers (covers.from_seq .. covers.to_seq)";
  }
  return [lines[first], lines[last]];
}

/** [problems, a phrase for P2's reason when the video holds (null when none was recorded)]. */
export function sessionVideoOutcome(ctx, lines) {
  const finished = lines.filter((l) => l.step === VIDEO_STEP);
  const started = lines.some((l) => l.step === VIDEO_START_STEP);
  if (!finished.length) return [started ? ["the capture log started a session video but never logged it finished"] : [], null];
  if (finished.length > 1) return [[`the capture log finished ${finished.length} session videos (one expected)`], null];
  const [line] = finished;
  if (!ctx.pkg.zip.has(SESSION_VIDEO_PATH)) return [[`the capture log says a session video was recorded, but ${SESSION_VIDEO_PATH} is missing`], null];
  const span = covered(lines, line);
  if (typeof span === "string") return [[span], null];
  const [first, last] = span;
  let info;
  try {
    info = readWebm(ctx.pkg.zip.read(SESSION_VIDEO_PATH, MAX_WEBM_BYTES));
  } catch (e) {
    if (!(e instanceof CheckFailure || e instanceof Unusable)) throw e;
    return [[`${SESSION_VIDEO_PATH} is not a readable WebM video: ${e.message}`], null];
  }
  const claimed = Number(epochMicros(last.time) - epochMicros(first.time)) / 1e6;
  const problems = [];
  if (info.blocks === 0) problems.push(`${SESSION_VIDEO_PATH} holds no frames`);
  else if (info.spanSeconds + DURATION_TOLERANCE_SECONDS < claimed) {
    problems.push(`the session video lasts ${formatDuration(rounded(info.spanSeconds))}, less than the ${formatDuration(rounded(claimed))} of the steps it claims to cover ('${first.step}' to '${last.step}')`);
  } else if (info.lastBlockSeconds + LAST_FRAME_SLACK_SECONDS < info.spanSeconds) {
    problems.push(`the session video states ${formatDuration(rounded(info.spanSeconds))}, but its last frame is at ${formatDuration(rounded(info.lastBlockSeconds))}`);
  }
  if (problems.length) return [problems, null];
  const steps = last.seq - first.seq + 1;
  return [[], `the session video (${info.docType}, ${formatDuration(rounded(info.spanSeconds))}, ${plural(info.blocks, "frame")}) covers ${plural(steps, "logged step")} from '${first.step}' to '${last.step}' (${formatDuration(rounded(claimed))})`];
}
