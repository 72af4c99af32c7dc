/**
 * The body of `POST /v1/images`: its schema (the SDK's image spec plus the submission's own
 * options, unknown fields refused) and its parse into layer keys, cache mode and the chain
 * index from which layers are rebuilt. Parses are memoised per isolate by the sha256 of the
 * exact body bytes, because the SDK resubmits identical bodies on every `image.build()` and
 * the cached resolve should cost one D1 statement, not a re-validation of every layer.
 */
import { z } from "@hono/zod-openapi";
import { BUILDER_VERSIONS, computeChainKeys, ImageSpecSchema, LayerSpecSchema } from "@kiln-build/protocol";
import canonicalize from "canonicalize";
import type { BuildMode } from "../../durable-objects/join-policy.ts";
import { badRequest } from "../errors.ts";
import { SecretName } from "../routes/secrets.ts";
import { TagName } from "../routes/tags.ts";

const EnvKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/);
const Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);

/** A runtime mount: files attached at container start, not built into a layer. */
export const RuntimeMountSchema = z
  .object({
    kind: z.enum(["file", "dir"]),
    remotePath: z.string().startsWith("/").max(4096),
    context: z.object({ digest: Digest, sizeBytes: z.number().int().nonnegative() }).strict().nullable(),
  })
  .strict();

/** The submission: the SDK's image spec plus the submission's own options. */
export const ImageRequestSchema = z
  .object({
    builderVersion: z.enum(BUILDER_VERSIONS),
    layers: z.array(LayerSpecSchema).min(1).max(256),
    /** Rebuild every layer and replace the cached results. */
    forceBuild: z.boolean().optional(),
    /** Rebuild every layer without reading or replacing the cache. */
    ignoreCache: z.boolean().optional(),
    /** Point this tag at the new image (needs `tags:write`). */
    tag: TagName.optional(),
    /** Per attempt; default 3600, at most 86400. */
    timeoutSeconds: z.number().int().min(60).max(86_400).optional(),
    /** Keys each named secret must hold (`Secret.fromName(name, { requiredKeys })`). */
    requiredSecretKeys: z.record(SecretName, z.array(EnvKey).max(256)).optional(),
    /** Files attached at container start; stored and returned as given. */
    runtimeMounts: z.array(RuntimeMountSchema).max(256).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    // The chain rules (only the root names a base) live with the SDK's schema: apply them, not a copy.
    const chain = ImageSpecSchema.safeParse({ builderVersion: body.builderVersion, layers: body.layers });
    if (!chain.success) for (const issue of chain.error.issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  })
  .openapi("ImageRequest");

/** A validated submission. */
export type ImageRequest = z.infer<typeof ImageRequestSchema>;

/** A submission parsed, validated and keyed. */
export type ParsedSubmission = {
  body: ImageRequest;
  /** Recomputed by the Worker, base first; never the client's. */
  keys: string[];
  mode: BuildMode;
  /** Chain index from which layers are rebuilt regardless of the cache (chain length: none). */
  freshFrom: number;
  /** sha256 of the body's canonical JSON, for Idempotency-Key comparison. */
  requestHash: string;
};

// Bodies up to this size are memoised; 256 of them bound the memo to 16 MiB. The memo holds
// promises, so a burst of identical concurrent submissions validates the body once.
const MEMO_MAX_BODY_CHARS = 64 * 1024;
const MEMO_ENTRIES = 256;
const memo = new Map<string, Promise<ParsedSubmission>>();

/** Parses `raw` (the request body) or throws a 400 in the one error shape. */
export async function parseSubmission(raw: string): Promise<ParsedSubmission> {
  if (raw.length > MEMO_MAX_BODY_CHARS) return parse(raw);
  const memoKey = await sha256Hex(raw);
  let parsed = memo.get(memoKey);
  if (parsed) {
    // Refresh its place: the memo evicts the least recently used.
    memo.delete(memoKey);
  } else {
    if (memo.size >= MEMO_ENTRIES) memo.delete(memo.keys().next().value!);
    parsed = parse(raw);
    // Invalid bodies are not kept: each gets its own 400.
    parsed.catch(() => memo.delete(memoKey));
  }
  memo.set(memoKey, parsed);
  return parsed;
}

async function parse(raw: string): Promise<ParsedSubmission> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw badRequest("The body is not valid JSON.");
  }
  const result = ImageRequestSchema.safeParse(json);
  if (!result.success) throw badRequest("Request validation failed.", result.error.issues);
  const body = result.data;
  const keys = await computeChainKeys({ builderVersion: body.builderVersion, layers: body.layers });
  const forcedAt = body.layers.findIndex((l) => l.forceBuild);
  const freshFrom = body.forceBuild || body.ignoreCache ? 0 : forcedAt >= 0 ? forcedAt : keys.length;
  const mode: BuildMode = body.ignoreCache ? "ignore" : freshFrom < keys.length ? "force" : "normal";
  return { body, keys, mode, freshFrom, requestHash: await sha256Hex(canonicalize(body) ?? "") };
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
