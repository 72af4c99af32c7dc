// The webhook URL policy (workers/webhooks/url-policy.ts): SSRF vectors refused, public https
// URLs allowed, and local development's allowPrivate admitting loopback and http.
import { describe, expect, it } from "vitest";
import { checkWebhookUrl, parseIpv6 } from "../../workers/webhooks/url-policy.ts";

const strict = { allowPrivate: false };

const REFUSED: [string, RegExp][] = [
  ["http://example.com/hook", /must use https/],
  ["ftp://example.com/", /must use https/],
  ["not a url", /absolute URL/],
  ["https://user:pass@example.com/", /credentials/],
  ["https://token@example.com/", /credentials/],
  // Loopback in every IPv4 spelling the URL parser knows.
  ["https://127.0.0.1/", /loopback/],
  ["https://127.1/", /loopback/],
  ["https://2130706433/", /loopback/],
  ["https://0x7f000001/", /loopback/],
  ["https://0x7f.1/", /loopback/],
  ["https://0177.0.0.1/", /loopback/],
  ["https://%31%32%37.0.0.1/", /loopback/],
  ["https://127.0.0.1.:8443/", /loopback/],
  ["https://[::1]/", /loopback/],
  ["https://[0:0:0:0:0:0:0:1]/", /loopback/],
  ["https://[::ffff:127.0.0.1]/", /embeds .* loopback/],
  ["https://[::ffff:7f00:1]/", /embeds .* loopback/],
  ["https://[::127.0.0.1]/", /embeds .* loopback/],
  ["https://[64:ff9b::7f00:1]/", /embeds .* loopback/],
  ["https://[2002:7f00:1::]/", /embeds .* loopback/],
  // Private, CGNAT, link-local and metadata.
  ["https://10.1.2.3/", /private/],
  ["https://172.16.0.1/", /private/],
  ["https://172.31.255.255/", /private/],
  ["https://192.168.1.1/", /private/],
  ["https://[::ffff:192.168.1.1]/", /embeds .* private/],
  ["https://100.64.0.1/", /carrier-grade/],
  ["https://100.127.255.254/", /carrier-grade/],
  ["https://169.254.169.254/latest/meta-data/", /link-local/],
  ["https://[::ffff:169.254.169.254]/", /embeds .* link-local/],
  ["https://[fe80::1]/", /link-local/],
  ["https://[febf::1]/", /link-local/],
  ["https://[fc00::1]/", /private/],
  ["https://[fd12:3456::1]/", /private/],
  ["https://[fd00:ec2::254]/", /private/],
  // Unspecified, multicast, reserved, documentation.
  ["https://0.0.0.0/", /unspecified/],
  ["https://0/", /unspecified/],
  ["https://[::]/", /unspecified/],
  ["https://224.0.0.1/", /multicast/],
  ["https://255.255.255.255/", /reserved or broadcast/],
  ["https://192.0.2.1/", /documentation/],
  ["https://[ff02::1]/", /multicast/],
  ["https://[2001:db8::1]/", /documentation/],
  ["https://[::2]/", /embeds|reserved/],
  // Names that only resolve inside a network.
  ["https://localhost/", /inside a network/],
  ["https://LOCALHOST./", /inside a network/],
  ["https://api.localhost/", /inside a network/],
  ["https://metadata.google.internal/computeMetadata/v1/", /inside a network/],
  ["https://metadata.google.internal./", /inside a network/],
  ["https://db.internal/", /inside a network/],
  ["https://printer.local/", /inside a network/],
  ["https://router.home.arpa/", /inside a network/],
  ["https://intranet/", /not a public domain name/],
  ["https://metadata/", /not a public domain name/],
];

const ALLOWED = [
  "https://example.com/hook",
  "https://example.com./hook",
  "https://hooks.slack.com/services/T000/B000/XXXX",
  "https://8.8.8.8/",
  "https://172.32.0.1/",
  "https://100.128.0.1/",
  "https://[2606:4700:4700::1111]/",
  "https://[::ffff:8.8.8.8]/",
  "https://example.com:8443/a?b=c",
];

describe("checkWebhookUrl", () => {
  it.each(REFUSED)("refuses %s", (url, why) => {
    const verdict = checkWebhookUrl(url, strict);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) {
      expect(verdict.reason).toMatch(why);
      expect(verdict.reason).toMatch(/Use an https URL on a public host\.$/);
    }
  });

  it.each(ALLOWED)("allows %s", (url) => {
    expect(checkWebhookUrl(url, strict).ok).toBe(true);
  });

  it("allows loopback, private addresses and http only in local development mode, never credentials or other schemes", () => {
    const dev = { allowPrivate: true };
    for (const url of ["http://127.0.0.1:9000/hook", "https://localhost/", "http://10.0.0.5/", "http://[::1]:8080/"]) {
      expect(checkWebhookUrl(url, dev).ok).toBe(true);
      expect(checkWebhookUrl(url, strict).ok).toBe(false);
    }
    expect(checkWebhookUrl("http://user:pw@127.0.0.1/", dev).ok).toBe(false);
    expect(checkWebhookUrl("ftp://127.0.0.1/", dev).ok).toBe(false);
  });

  it("parses IPv6 text forms", () => {
    expect(parseIpv6("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6("fe80::")).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIpv6("::ffff:1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(parseIpv6("1:2:3:4:5:6:7:8")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseIpv6("1:2:3")).toBeNull();
    expect(parseIpv6("1::2::3")).toBeNull();
    expect(parseIpv6("12345::")).toBeNull();
  });
});
