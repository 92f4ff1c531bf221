// The hosts file as the clean-environment record carries its text: which entries a stock file holds
// and which are beyond it. Written from the record's spec (DESIGN: S4), not from the capture tool:
// the page recomputes the non-default entries itself instead of taking the tool's list.
//
// Stock entries are the localhost and ip6 names at their stock addresses (Debian's, Red Hat's and
// Alpine's files) and the machine's own names at any address. A stock name at another address, or a
// stock line with one more name on it, is not stock: that is how a hosts file poisons a capture.

const ANY_LOOPBACK = null;
const DEFAULT_HOST_NAMES = new Map([
  ...["localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4", "localhost6",
    "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"].map((n) => [n, ANY_LOOPBACK]),
  ["ip6-localnet", ["fe00::"]], ["ip6-mcastprefix", ["ff00::"]], ["ip6-allnodes", ["ff02::1"]],
  ["ip6-allrouters", ["ff02::2"]], ["ip6-allhosts", ["ff02::3"]],
]);

// Line breaks and whitespace as the record's spec reads them (Unicode line boundaries and spaces).
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;
const SPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const IPV4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function ipv4Octets(text) {
  const m = IPV4.exec(text);
  if (!m) return null;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

function ipv6Hextets(text) {
  let head = text, tail = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    const octets = ipv4Octets(text.slice(lastColon + 1));
    if (!octets) return null;
    head = text.slice(0, lastColon + 1) + "0:0";
    tail = [(octets[0] << 8) | octets[1], (octets[2] << 8) | octets[3]];
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (part) => (part === "" ? [] : part.split(":"));
  const left = groups(halves[0]), right = halves.length === 2 ? groups(halves[1]) : [];
  if (![...left, ...right].every((g) => HEXTET.test(g))) return null;
  const given = left.length + right.length;
  if (halves.length === 2 ? given > 7 : given !== 8) return null;
  const hextets = [...left, ...Array(8 - given).fill("0"), ...right].map((g) => parseInt(g, 16));
  if (tail.length) hextets.splice(6, 2, ...tail);
  return hextets;
}

/** An address as a comparable key ("4:a.b.c.d" or "6:h:h:…"), or null when it is not an IP address. */
export function parseAddress(text) {
  const bare = text.split("%", 1)[0];
  if (!text.includes(":")) {
    const octets = ipv4Octets(bare);
    return octets && { version: 4, parts: octets, key: `4:${octets.join(".")}` };
  }
  const hextets = ipv6Hextets(bare);
  return hextets && { version: 6, parts: hextets, key: `6:${hextets.join(":")}` };
}

const isLoopback = (ip) => (ip.version === 4 ? ip.parts[0] === 127
  : ip.parts.slice(0, 7).every((h) => h === 0) && ip.parts[7] === 1);

/** Every entry (address and lower-case names) of a hosts file; comments and blank lines skipped. */
export function parseHosts(text) {
  const entries = [];
  for (const line of text.split(LINE_BREAK)) {
    const fields = line.split("#", 1)[0].split(SPACE).filter(Boolean);
    if (fields.length >= 2) entries.push({ address: fields[0], names: fields.slice(1).map((n) => n.toLowerCase()) });
  }
  return entries;
}

/** Whether a stock hosts file holds this entry on a machine called `ownNames`. */
export function isDefault(entry, ownNames) {
  const ip = parseAddress(entry.address);
  if (!ip) return false;
  for (const name of entry.names) {
    if (!DEFAULT_HOST_NAMES.has(name)) {
      if (ownNames.includes(name)) continue; // the machine's own name may map to any of its addresses
      return false;
    }
    // A stock name counts only at its stock address, even where it is also the machine's own name.
    const allowed = DEFAULT_HOST_NAMES.get(name);
    if (allowed === ANY_LOOPBACK ? !isLoopback(ip) : !allowed.some((a) => parseAddress(a).key === ip.key)) return false;
  }
  return true;
}

/** The entries of `text` beyond a stock hosts file's. */
export const nonDefaultEntries = (text, ownNames) => parseHosts(text).filter((e) => !isDefault(e, ownNames));
