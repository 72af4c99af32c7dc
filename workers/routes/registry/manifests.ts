/**
 * Manifests, tags and referrers: `HEAD|GET|PUT|DELETE /v2/<name>/manifests/<reference>`,
 * `GET /v2/<name>/tags/list` and `GET /v2/<name>/referrers/<digest>`. Manifest bytes are
 * content-addressed in R2 (`manifests/sha256/<hex>`, sha256 checked by R2 on write); D1
 * holds the rows, the references (the GC's mark set) and tags as pointers.
 */

import { digestHex, digestOfBytes } from "@kiln-build/protocol";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env.ts";
import { authorize, authorizeTag, noWorkspace, type RegistryCaller } from "../../registry/auth.ts";
import { digestInvalid, manifestBlobUnknown, manifestInvalid, manifestUnknown, nameUnknown, RegistryError } from "../../registry/errors.ts";
import { MAX_MANIFEST_BYTES, OCI_INDEX, parseManifest, sizeMismatch } from "../../registry/manifest.ts";
import { pageOf, parsePage } from "../../registry/pagination.ts";
import { classifyDigest, isTag, requireDigest, workspaceNameOf } from "../../registry/reference.ts";
import {
  db,
  deleteManifest,
  deleteTag,
  findManifest,
  firstMissing,
  listTags,
  manifestPreflight,
  referrers,
  repositoryExists,
  storeManifest,
} from "../../registry/store.ts";

/** R2 key of a manifest's bytes. */
export const manifestKey = (digest: string) => `manifests/sha256/${digestHex(digest)}`;

function checkReference(reference: string): "digest" | "tag" {
  const kind = classifyDigest(reference);
  if (kind === "sha256") return "digest";
  if (kind === "other") throw digestInvalid("only sha256 digests are supported", { reference });
  if (!isTag(reference)) throw manifestInvalid("invalid tag", { reference });
  return "tag";
}

/** HEAD or GET of a manifest by tag or digest. */
export async function readManifest(c: Context<AppEnv>, caller: RegistryCaller, name: string, reference: string): Promise<Response> {
  await authorize(c, caller, name, ["pull"]);
  checkReference(reference);
  const row = await findManifest(db(c.env), name, reference);
  if (!row) throw manifestUnknown(reference);
  const headers = {
    "content-type": row.mediaType,
    "docker-content-digest": row.digest,
    "content-length": String(row.sizeBytes),
    etag: `"${row.digest}"`,
  };
  if (c.req.method === "HEAD") return new Response(null, { status: 200, headers });
  const object = await c.env.REGISTRY.get(manifestKey(row.digest));
  if (!object) {
    console.error(JSON.stringify({ level: "error", msg: "registry manifest missing in R2", digest: row.digest }));
    throw manifestUnknown(reference);
  }
  return new Response(object.body, { status: 200, headers });
}

async function readLimited(c: Context<AppEnv>): Promise<Uint8Array> {
  const length = c.req.header("content-length");
  const tooBig = () => new RegistryError(413, "SIZE_INVALID", `manifest larger than ${MAX_MANIFEST_BYTES} bytes`);
  if (length !== undefined && Number(length) > MAX_MANIFEST_BYTES) throw tooBig();
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > MAX_MANIFEST_BYTES) throw tooBig();
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** PUT of a manifest under a tag or its digest. */
export async function putManifest(c: Context<AppEnv>, caller: RegistryCaller, name: string, reference: string): Promise<Response> {
  await authorize(c, caller, name, ["push"]);
  const kind = checkReference(reference);
  // A job token writes only its own layers' tags; by digest it adds without moving any tag.
  if (kind === "tag") authorizeTag(caller, name, reference);
  const bytes = await readLimited(c);
  const digest = digestOfBytes(await crypto.subtle.digest("SHA-256", bytes));
  if (kind === "digest" && digest !== reference)
    throw digestInvalid("the manifest's digest does not match the reference", { reference, actual: digest });
  const parsed = parseManifest(bytes, c.req.header("content-type"));
  if (!parsed.ok) throw manifestInvalid(parsed.message, parsed.detail);
  const d = db(c.env);
  const now = Date.now();
  // The owner, the references' stored sizes and the touch of its blobs: one D1 round trip.
  const { workspaceId, held } = await manifestPreflight(d, name, workspaceNameOf(name), parsed.manifest, now);
  if (!workspaceId) throw noWorkspace(name);
  // A descriptor's size is what a client reads and allocates by: it must be the stored content's
  // (only content this repository holds is compared).
  const wrong = sizeMismatch(parsed.manifest, held);
  if (wrong) {
    throw manifestInvalid(
      `the descriptor of ${wrong.digest} declares ${wrong.declared} bytes, but the repository holds ${wrong.stored}; use the size the content was pushed with`,
      wrong,
    );
  }
  const missing = firstMissing(parsed.manifest, held);
  if (missing) throw manifestBlobUnknown(missing);
  await c.env.REGISTRY.put(manifestKey(digest), bytes, {
    sha256: digestHex(digest),
    httpMetadata: { contentType: parsed.manifest.mediaType },
  });
  await storeManifest(d, name, workspaceId, digest, bytes.byteLength, parsed.manifest, kind === "tag" ? reference : null, now);
  const headers: Record<string, string> = {
    location: `/v2/${name}/manifests/${digest}`,
    "docker-content-digest": digest,
    "content-length": "0",
  };
  if (parsed.manifest.subject) headers["oci-subject"] = parsed.manifest.subject;
  return new Response(null, { status: 201, headers });
}

/** DELETE by digest (the manifest and its tags) or by tag (the tag only). */
export async function removeManifest(c: Context<AppEnv>, caller: RegistryCaller, name: string, reference: string): Promise<Response> {
  await authorize(c, caller, name, ["delete"]);
  const kind = checkReference(reference);
  const d = db(c.env);
  const found = kind === "digest" ? await deleteManifest(d, name, reference) : await deleteTag(d, name, reference);
  if (!found) throw manifestUnknown(reference);
  return new Response(null, { status: 202 });
}

/** GET /tags/list with `n` and `last`. */
export async function tagsList(c: Context<AppEnv>, caller: RegistryCaller, name: string): Promise<Response> {
  await authorize(c, caller, name, ["pull"]);
  const page = parsePage(c.req.query("n"), c.req.query("last"));
  if (!page) throw new RegistryError(400, "UNSUPPORTED", "n must be a non-negative integer");
  const d = db(c.env);
  if (!(await repositoryExists(d, name))) throw nameUnknown(name);
  const names = page.limit === 0 ? [] : await listTags(d, name, page.last, page.limit + 1);
  const result = pageOf(names, page, `/v2/${name}/tags/list`);
  const headers: Record<string, string> = {};
  if (result.link) headers.link = result.link;
  return c.json({ name, tags: result.names }, 200, headers);
}

/** GET /referrers/<digest>: an image index of the manifests whose subject is `digest`. */
export async function listReferrers(c: Context<AppEnv>, caller: RegistryCaller, name: string, digest: string): Promise<Response> {
  await authorize(c, caller, name, ["pull"]);
  requireDigest(digest);
  const artifactType = c.req.query("artifactType") ?? null;
  const rows = await referrers(db(c.env), name, digest, artifactType);
  const manifests = rows.map((r) => ({
    mediaType: r.mediaType,
    digest: r.digest,
    size: r.sizeBytes,
    ...(r.artifactType ? { artifactType: r.artifactType } : {}),
    ...(r.annotations ? { annotations: r.annotations } : {}),
  }));
  const headers: Record<string, string> = { "content-type": OCI_INDEX };
  if (artifactType) headers["oci-filters-applied"] = "artifactType";
  return new Response(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }), { status: 200, headers });
}
