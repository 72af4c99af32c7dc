/**
 * The context manifest (docs/decisions/0022): a layer's build context as the sorted list of
 * what it holds (paths, types, modes, sizes, symlink targets and each file's sha256) in RFC
 * 8785 canonical JSON. Its sha256 is the context digest a layer key covers; the files' bytes
 * travel separately as content-addressed blobs. One home for the schema and the rules so the
 * SDK, the Worker and the runner cannot disagree. Web APIs only.
 */
import { z } from "zod";
import { digestOfBytes, Sha256Digest } from "./digest.ts";

/** The manifest format this code writes and reads. */
export const CONTEXT_MANIFEST_VERSION = 1;

/** Largest manifest the Worker and runners read (about 100,000 entries). */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

// Relative POSIX path: no leading or trailing slash, no empty, `.` or `..` component, no NUL.
const PATH_PATTERN = /^(?!\/)(?!.*\/\/)(?!.*\/$)(?!(?:.*\/)?\.\.?(?:\/|$))[^\0]{1,4096}$/;
const Mode = z.number().int().min(0).max(0o7777);

/** One file, directory or symlink of a context. */
export const ContextManifestEntry = z.discriminatedUnion("type", [
  z.object({ path: z.string().regex(PATH_PATTERN), type: z.literal("dir"), mode: Mode }).strict(),
  z
    .object({
      path: z.string().regex(PATH_PATTERN),
      type: z.literal("file"),
      mode: Mode,
      size: z.number().int().nonnegative(),
      sha256: Sha256Digest,
    })
    .strict(),
  z.object({ path: z.string().regex(PATH_PATTERN), type: z.literal("symlink"), target: z.string().min(1).max(4096) }).strict(),
]);
/** One entry of a context manifest. */
export type ContextManifestEntry = z.infer<typeof ContextManifestEntry>;

/** A context manifest: its format version and its entries, sorted by path components. */
export const ContextManifest = z
  .object({ version: z.literal(CONTEXT_MANIFEST_VERSION), entries: z.array(ContextManifestEntry) })
  .strict()
  .superRefine((manifest, ctx) => {
    const problem = manifestProblem(manifest.entries);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["entries"] });
  });
/** A parsed context manifest. */
export type ContextManifest = z.infer<typeof ContextManifest>;

const SLASH = 0x2f;

/**
 * Orders paths component by component (each compared by UTF-16 code units), so a directory
 * always precedes its contents. That equals comparing whole strings with `/` below every
 * other character, which needs no split: where two paths first differ, a `/` ends the
 * shorter component, and a path that is a prefix of the other comes first.
 */
export function compareContextPaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * Why `entries` is not a valid context, or null: they must be strictly sorted (so unique) and
 * every entry's parent must be a directory listed before it. The runner relies on the second
 * rule: nothing is ever written below a symlink.
 */
export function manifestProblem(entries: readonly ContextManifestEntry[]): string | null {
  const dirs = new Set<string>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (i > 0 && compareContextPaths(entries[i - 1]!.path, entry.path) >= 0) return `entries are not sorted at ${entry.path}`;
    const slash = entry.path.lastIndexOf("/");
    if (slash >= 0 && !dirs.has(entry.path.slice(0, slash))) return `${entry.path} has no directory entry for its parent`;
    if (entry.type === "dir") dirs.add(entry.path);
  }
  return null;
}

/** The canonical bytes of a manifest (RFC 8785) and their digest, the context digest. */
export async function encodeContextManifest(manifest: ContextManifest): Promise<{ bytes: Uint8Array; digest: string }> {
  const bytes = new TextEncoder().encode(canonicalManifestJson(manifest));
  return { bytes, digest: digestOfBytes(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)) };
}

/**
 * RFC 8785 canonical JSON of a manifest: the same text `canonicalize` gives, at a fraction of
 * its cost for 100,000 entries. Each entry is copied into an object whose keys are inserted in
 * code-unit order, so one native `JSON.stringify` writes the canonical text: it escapes
 * strings and writes integers exactly as RFC 8785 does. Like `canonicalize`, refuses a lone
 * surrogate and a number that is not finite (which `JSON.stringify` would write as null).
 */
export function canonicalManifestJson(manifest: ContextManifest): string {
  const entries: object[] = new Array(manifest.entries.length);
  for (let i = 0; i < entries.length; i++) {
    const entry = manifest.entries[i]!;
    if (entry.type === "dir") entries[i] = { mode: finite(entry.mode), path: entry.path, type: "dir" };
    else if (entry.type === "file") {
      entries[i] = { mode: finite(entry.mode), path: entry.path, sha256: entry.sha256, size: finite(entry.size), type: "file" };
    } else entries[i] = { path: entry.path, target: entry.target, type: "symlink" };
  }
  const json = JSON.stringify({ entries, version: finite(manifest.version) });
  // JSON.stringify writes a lone surrogate as `\udXXX`: only then is the exact (slower) check needed.
  if (json.includes("\\ud") && manifest.entries.some(hasLoneSurrogate)) throw new Error("Lone surrogate is not allowed");
  return json;
}

// In a `u` regular expression a paired surrogate is one astral code point, so only lone ones match.
const LONE_SURROGATE = /\p{Cs}/u;

function hasLoneSurrogate(entry: ContextManifestEntry): boolean {
  const strings = entry.type === "file" ? [entry.path, entry.sha256] : entry.type === "symlink" ? [entry.path, entry.target] : [entry.path];
  return strings.some((value) => LONE_SURROGATE.test(value));
}

function finite(value: number): number {
  if (!Number.isFinite(value)) throw new Error(`${value} is not allowed`);
  return value;
}

/** Parses manifest bytes; returns null for anything that is not a valid manifest. */
export function decodeContextManifest(bytes: Uint8Array): ContextManifest | null {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) return null;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    return null;
  }
  const parsed = ContextManifest.safeParse(json);
  return parsed.success ? parsed.data : null;
}

/** The distinct blob digests a manifest names, in first-seen order. */
export function manifestBlobs(manifest: ContextManifest): { digest: string; sizeBytes: number }[] {
  const seen = new Map<string, number>();
  for (const entry of manifest.entries) if (entry.type === "file" && !seen.has(entry.sha256)) seen.set(entry.sha256, entry.size);
  return [...seen].map(([digest, sizeBytes]) => ({ digest, sizeBytes }));
}
