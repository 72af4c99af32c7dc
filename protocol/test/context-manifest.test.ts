// The context manifest's encoding (decision 0022): the written-out canonical JSON gives exactly
// the bytes `canonicalize` (RFC 8785) gives, and the split-free path order is exactly the
// component-by-component order, on awkward paths and on a seeded random sample.
import canonicalize from "canonicalize";
import { describe, expect, it } from "vitest";
import { type ContextManifest, canonicalManifestJson, compareContextPaths, encodeContextManifest } from "../src/context-manifest.ts";

const HEX = "ab".repeat(32);
// Characters that JSON escapes or that sort around "/", plus non-ASCII and astral names.
const NAMES = [
  "a",
  "a-b",
  "a.b",
  "a/b",
  "A",
  "é",
  "\u{1F600}",
  "\uFF5E",
  'q"uote',
  "back\\slash",
  "tab\tx",
  "nl\nx",
  "\u0001ctl",
  "\u2028",
  "~",
  " ",
];

/** A seeded random generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function splitOrder(a: string, b: string): number {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
}

describe("context manifest encoding", () => {
  it("writes the bytes canonicalize writes, for every entry shape and awkward strings", async () => {
    const manifest: ContextManifest = {
      version: 1,
      entries: [
        { path: "d", type: "dir", mode: 0o755 },
        ...NAMES.filter((n) => !n.includes("/")).map((n, i) => ({
          path: `d/${n}`,
          type: "file" as const,
          mode: i % 2 ? 0o644 : 0o4755,
          size: i * 1_000_003,
          sha256: `sha256:${HEX}`,
        })),
        { path: "d/link", type: "symlink", target: '../é/\u{1F600} "x"\\' },
      ],
    };
    const text = canonicalManifestJson(manifest);
    expect(text).toBe(canonicalize(manifest));
    const { bytes, digest } = await encodeContextManifest(manifest);
    expect(new TextDecoder().decode(bytes)).toBe(text);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(canonicalManifestJson({ version: 1, entries: [] })).toBe(canonicalize({ version: 1, entries: [] }));
  });

  it("refuses a lone surrogate, as canonicalize does", () => {
    const manifest: ContextManifest = { version: 1, entries: [{ path: "bad\ud800", type: "dir", mode: 0o755 }] };
    expect(() => canonicalize(manifest)).toThrow(/surrogate/i);
    expect(() => canonicalManifestJson(manifest)).toThrow(/surrogate/i);
    // A paired surrogate is an ordinary astral character.
    const fine: ContextManifest = { version: 1, entries: [{ path: "ok\u{1F600}", type: "dir", mode: 0o755 }] };
    expect(canonicalManifestJson(fine)).toBe(canonicalize(fine));
  });

  it("orders paths component by component without splitting them", () => {
    const next = random(0x6b696c6e);
    const paths: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const depth = 1 + Math.floor(next() * 4);
      paths.push(Array.from({ length: depth }, () => NAMES.filter((n) => !n.includes("/"))[Math.floor(next() * 15)]!).join("/"));
    }
    paths.push("a", "a/b", "a-b", "ab", "a/b/c", "a.b/c");
    for (let i = 0; i + 1 < paths.length; i++) {
      const [a, b] = [paths[i]!, paths[i + 1]!];
      expect(Math.sign(compareContextPaths(a, b))).toBe(Math.sign(splitOrder(a, b)));
    }
    expect([...paths].sort(compareContextPaths)).toEqual([...paths].sort(splitOrder));
  });
});
