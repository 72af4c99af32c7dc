/**
 * The body of `POST /v1/images`: its schema (the SDK's image spec plus the submission's own
 * options, unknown fields refused) and its parse into layer keys, cache mode and the chain
 * index from which layers are rebuilt. Parses are memoised per isolate by the sha256 of the
 * exact body bytes, because the SDK resubmits identical bodies on every `image.build()` and
 * the cached resolve should cost one D1 statement, not a re-validation of every layer.
 */
// Evaluated first: it adds `.openapi()` to zod schemas, which this module calls at load.
import "@hono/zod-openapi";
import { computeChainKeys, type ImageRequest, ImageRequestSchema as ProtocolImageRequestSchema, sha256Hex } from "@kiln-build/protocol";
import canonicalize from "canonicalize";
import { badRequest } from "../errors.ts";
import type { BuildMode } from "./build-mode.ts";

/** The submission, documented under the name clients generate from. */
export const ImageRequestSchema = ProtocolImageRequestSchema.openapi("ImageRequest");

export type { ImageRequest };

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
