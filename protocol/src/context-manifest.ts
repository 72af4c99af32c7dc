/**
 * The context manifest (docs/decisions/0022): a layer's build context as the sorted list of
 * what it holds (paths, types, modes, sizes, symlink targets and each file's sha256) in RFC
 * 8785 canonical JSON. Its sha256 is the context digest a layer key covers; the files' bytes
 * travel separately as content-addressed blobs. One home for the schema and the rules so the
 * SDK, the Worker and the runner cannot disagree. Web APIs only.
 */
import canonicalize from "canonicalize";
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

/** Orders paths component by component, so a directory always precedes its contents. */
export function compareContextPaths(a: string, b: string): number {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
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
  const bytes = new TextEncoder().encode(canonicalize(manifest) as string);
  return { bytes, digest: digestOfBytes(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)) };
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
