// Times and durations as a court reads them, the same format as verifier/court_time.py: every time
// twice, Beijing time first (the court's clock) and UTC second (the clock of the timestamp and the
// chain), to the millisecond, so two times on the page compare at a glance.

const BEIJING_MS = 8 * 3600e3; // China Standard Time: UTC+8 all year, no daylight saving since 1991
export const BEIJING_LABEL = "北京时间 UTC+8";

const clock = (d) => d.toISOString().slice(0, 23).replace("T", " ");

/**
 * `2026-12-01 23:14:42.123 (北京时间 UTC+8) / 2026-12-01 15:14:42.123 UTC`, from a Date or an ISO
 * 8601 string. A value that is not a time comes back unchanged, so a malformed package value stays visible.
 */
export function formatTime(moment) {
  const date = moment instanceof Date ? moment : new Date(String(moment));
  if (Number.isNaN(date.getTime())) return String(moment);
  return `${clock(new Date(date.getTime() + BEIJING_MS))} (${BEIJING_LABEL}) / ${clock(date)} UTC`;
}

/** At most 3 decimals, no trailing zeros: 0.7, 12, 1.234. */
export function formatNumber(value) {
  const text = value.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
  return text === "-0" ? "0" : text;
}

const UNITS = [[86400, "天", "day", "days"], [3600, "小时", "hour", "hours"], [60, "分钟", "minute", "minutes"]];

export const plural = (count, one, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

/** A duration in words: `0.7 s` / `0.7 秒` under a minute, else the two largest whole units. */
export function formatDuration(seconds, lang = "en") {
  const secs = (n) => (lang === "zh" ? `${formatNumber(n)} 秒` : `${formatNumber(n)} s`);
  if (Math.abs(seconds) < 60) return secs(seconds);
  const sign = seconds < 0 ? "-" : "";
  let rest = Math.abs(seconds);
  const parts = [];
  for (const [size, zh, one, many] of UNITS) {
    const whole = Math.floor(rest / size);
    if (whole) {
      parts.push(lang === "zh" ? `${whole} ${zh}` : plural(whole, one, many));
      rest -= whole * size;
    }
    if (parts.length === 2) break;
  }
  if (rest >= 0.001 && parts.length < 2) parts.push(secs(rest));
  return sign + parts.join(" ");
}

/** A policy number as the trust file sets it, exact: `300 s` / `300 秒`. */
export const formatSeconds = (seconds, lang = "en") => (lang === "zh" ? `${formatNumber(seconds)} 秒` : `${formatNumber(seconds)} s`);

const ISO = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:\d\d)$/;
const GENERALIZED = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:[.,](\d+))?(Z)$/;

/**
 * Microseconds since 1970 (a BigInt) of an ISO 8601 time or an ASN.1 GeneralizedTime, or null. A Date
 * keeps milliseconds only; a duration between two recorded times is stated to the millisecond as
 * verifier/court_time.py states it, which needs the microseconds both records carry.
 */
export function epochMicros(text) {
  const m = ISO.exec(String(text)) ?? GENERALIZED.exec(String(text));
  if (!m) return null;
  const [, y, mo, d, h, mi, s, fraction = "", zone] = m;
  const seconds = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
  if (Number.isNaN(seconds)) return null;
  const offset = zone === "Z" ? 0 : (zone[0] === "-" ? -1 : 1) * (Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60);
  return BigInt(seconds - offset) * 1000000n + BigInt(fraction.slice(0, 6).padEnd(6, "0"));
}
