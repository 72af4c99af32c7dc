/**
 * Which URLs Kiln may deliver webhooks to (SSRF protection, decision 0017). Pure: checked when
 * a subscription is created and again before every delivery attempt.
 *
 * Refused: anything but https; credentials in the URL; hosts that are not public: loopback,
 * private (RFC 1918, CGNAT 100.64/10, fc00::/7), link-local (169.254/16 with the cloud
 * metadata address, fe80::/10), unspecified, multicast, reserved and documentation ranges, the
 * IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) of those; and names
 * that only resolve inside a network: `localhost`, `*.localhost`, `*.internal` (with
 * `metadata.google.internal`), `*.local`, `*.home.arpa` and single-label names. The WHATWG URL
 * parser already turns every IPv4 spelling (`2130706433`, `0x7f.1`, `0177.0.0.1`) into dotted
 * decimal and every IPv6 one into its compressed form, so the checks below see one spelling.
 *
 * Names are not resolved here (Workers have no DNS API): a public name pointing at a private
 * address is stopped by the platform, whose `fetch` does not reach private networks.
 * `allowPrivate` (the `WEBHOOKS_ALLOW_PRIVATE` var of local development) also allows http.
 */

/** The verdict on a URL: the parsed URL, or why it is refused (a sentence for the API's 400). */
export type UrlVerdict = { ok: true; url: URL } | { ok: false; reason: string };

/** Options of {@link checkWebhookUrl}. */
export type UrlPolicy = { allowPrivate: boolean };

const BLOCKED_SUFFIXES = [".localhost", ".internal", ".local", ".home.arpa", ".localdomain"];

/** Checks `raw` against the webhook URL policy. */
export function checkWebhookUrl(raw: string, policy: UrlPolicy): UrlVerdict {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse("is not an absolute URL");
  }
  const plainHttpAllowed = policy.allowPrivate && url.protocol === "http:";
  if (url.protocol !== "https:" && !plainHttpAllowed) return refuse("must use https");
  if (url.username || url.password) return refuse("must not contain credentials");
  if (policy.allowPrivate) return { ok: true, url };
  const host = url.hostname.replace(/\.+$/, "");
  if (host.startsWith("[")) {
    const groups = parseIpv6(host.slice(1, -1));
    const why = groups ? ipv6Refusal(groups) : "is not a valid IPv6 address";
    return why ? refuse(`host ${url.hostname} ${why}`) : { ok: true, url };
  }
  const v4 = parseIpv4(host);
  if (v4) {
    const why = ipv4Refusal(v4);
    return why ? refuse(`host ${url.hostname} ${why}`) : { ok: true, url };
  }
  if (host === "localhost" || BLOCKED_SUFFIXES.some((s) => host.endsWith(s)))
    return refuse(`host ${url.hostname} only resolves inside a network`);
  if (host === "" || !host.includes(".")) return refuse(`host ${url.hostname || "(empty)"} is not a public domain name`);
  return { ok: true, url };
}

function refuse(why: string): UrlVerdict {
  return { ok: false, reason: `The webhook URL ${why}. Use an https URL on a public host.` };
}

/** Dotted-decimal IPv4 (as the URL parser normalises every spelling) to its four octets. */
function parseIpv4(host: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

// [first address, prefix length, what it is], IPv4 ranges that are not the public internet.
const IPV4_BLOCKS: [number[], number, string][] = [
  [[0, 0, 0, 0], 8, "is an unspecified (this network) address"],
  [[10, 0, 0, 0], 8, "is a private address"],
  [[100, 64, 0, 0], 10, "is a carrier-grade NAT address"],
  [[127, 0, 0, 0], 8, "is a loopback address"],
  [[169, 254, 0, 0], 16, "is a link-local (cloud metadata) address"],
  [[172, 16, 0, 0], 12, "is a private address"],
  [[192, 0, 0, 0], 24, "is a reserved address"],
  [[192, 0, 2, 0], 24, "is a documentation address"],
  [[192, 88, 99, 0], 24, "is a reserved address"],
  [[192, 168, 0, 0], 16, "is a private address"],
  [[198, 18, 0, 0], 15, "is a benchmarking address"],
  [[198, 51, 100, 0], 24, "is a documentation address"],
  [[203, 0, 113, 0], 24, "is a documentation address"],
  [[224, 0, 0, 0], 4, "is a multicast address"],
  [[240, 0, 0, 0], 4, "is a reserved or broadcast address"],
];

function ipv4Refusal(octets: number[]): string | null {
  const value = toUint32(octets);
  for (const [start, bits, why] of IPV4_BLOCKS) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if ((value & mask) >>> 0 === toUint32(start)) return why;
  }
  return null;
}

function toUint32(o: number[]): number {
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

/** An IPv6 address (without brackets) to its eight 16-bit groups; accepts `::` and a trailing dotted IPv4. */
export function parseIpv6(text: string): number[] | null {
  let body = text.toLowerCase();
  const tail: number[] = [];
  const dotted = /(?:^|:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(body);
  if (dotted) {
    const v4 = parseIpv4(dotted[1]!);
    if (!v4) return null;
    tail.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    body = body.slice(0, body.length - dotted[1]!.length);
    if (body.endsWith(":") && !body.endsWith("::")) body = body.slice(0, -1);
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) =>
    part === "" ? [] : part.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? Number.parseInt(g, 16) : Number.NaN));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - rest.length - tail.length;
  if ([...head, ...rest].some(Number.isNaN) || fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  if (halves.length === 2 && fill < 1) return null;
  return [...head, ...Array<number>(fill).fill(0), ...rest, ...tail];
}

function ipv6Refusal(g: number[]): string | null {
  const embedded = (hi: number, lo: number) => ipv4Refusal([hi >> 8, hi & 255, lo >> 8, lo & 255]);
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (g.every((x) => x === 0)) return "is the unspecified address";
  if (zeros(7) && g[7] === 1) return "is a loopback address";
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible): the IPv4 address decides.
  if (zeros(5) && (g[5] === 0xffff || g[5] === 0)) return embeddedVerdict(embedded(g[6]!, g[7]!));
  // 64:ff9b::/96 (NAT64) and 2002::/16 (6to4) carry an IPv4 address too.
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return embeddedVerdict(embedded(g[6]!, g[7]!));
  if (g[0] === 0x2002) return embeddedVerdict(embedded(g[1]!, g[2]!));
  if ((g[0]! & 0xfe00) === 0xfc00) return "is a private (unique local) address";
  if ((g[0]! & 0xffc0) === 0xfe80) return "is a link-local address";
  if ((g[0]! & 0xffc0) === 0xfec0) return "is a site-local address";
  if ((g[0]! & 0xff00) === 0xff00) return "is a multicast address";
  if (g[0] === 0x2001 && g[1] === 0x0db8) return "is a documentation address";
  if (g[0] === 0x0100 && g.slice(1, 4).every((x) => x === 0)) return "is a discard address";
  // Everything else outside 2000::/3 (global unicast) is reserved.
  if ((g[0]! & 0xe000) !== 0x2000) return "is a reserved address";
  return null;
}

function embeddedVerdict(why: string | null): string | null {
  return why ? `embeds an IPv4 address that ${why}` : null;
}
