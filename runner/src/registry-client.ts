/**
 * A minimal OCI distribution client: reads a pushed image's manifest to verify its digest
 * and compute its size. Handles the registry token dance (Bearer challenge with basic
 * credentials) and plain basic auth.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import type { RegistryLogin } from "./registry-auth.ts";
import { registryHostOf } from "./registry-auth.ts";

const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

const Descriptor = z.object({ size: z.number().int().nonnegative() }).loose();
const ManifestSchema = z.object({ config: Descriptor.optional(), layers: z.array(Descriptor).optional(), manifests: z.array(Descriptor).optional() }).loose();
const TokenSchema = z.object({ token: z.string().optional(), access_token: z.string().optional() }).loose();

/** A manifest as stored by the registry. */
export type ManifestInfo = { digest: string; sizeBytes: number; mediaType: string | null };

/** Splits `host/name:tag` or `host/name@sha256:...` into its parts. */
export function parseReference(reference: string): { host: string; name: string; ref: string } {
  const host = registryHostOf(reference);
  let rest = reference.startsWith(`${host}/`) ? reference.slice(host.length + 1) : reference;
  if (host === "docker.io" && !rest.includes("/")) rest = `library/${rest}`;
  const at = rest.indexOf("@");
  if (at !== -1) return { host, name: rest.slice(0, at), ref: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) return { host, name: rest.slice(0, colon), ref: rest.slice(colon + 1) };
  return { host, name: rest, ref: "latest" };
}

/** Fetches the manifest of `reference`; its digest is computed from the bytes received. */
export async function fetchManifest(
  reference: string,
  options: { login?: RegistryLogin | null; insecure?: boolean; fetch?: typeof fetch; signal?: AbortSignal } = {},
): Promise<ManifestInfo> {
  const { host, name, ref } = parseReference(reference);
  const apiHost = host === "docker.io" ? "registry-1.docker.io" : host;
  const url = `${options.insecure ? "http" : "https"}://${apiHost}/v2/${name}/manifests/${ref}`;
  const doFetch = options.fetch ?? fetch;
  const get = (authorization?: string) =>
    doFetch(url, { headers: { accept: MANIFEST_TYPES, ...(authorization ? { authorization } : {}) }, ...(options.signal ? { signal: options.signal } : {}) });
  let response = await get();
  if (response.status === 401) {
    await response.body?.cancel();
    const authorization = await authorize(response.headers.get("www-authenticate") ?? "", options.login ?? null, doFetch, options.signal);
    response = await get(authorization);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`registry answered HTTP ${response.status} for the manifest of ${reference}`);
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  const parsed = ManifestSchema.safeParse(JSON.parse(bytes.toString("utf8")));
  if (!parsed.success) throw new Error(`the manifest of ${reference} is not an image manifest`);
  const m = parsed.data;
  const sizeBytes = (m.config?.size ?? 0) + [...(m.layers ?? []), ...(m.manifests ?? [])].reduce((sum, d) => sum + d.size, 0);
  return { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, sizeBytes, mediaType: response.headers.get("content-type") };
}

async function authorize(challenge: string, login: RegistryLogin | null, doFetch: typeof fetch, signal?: AbortSignal): Promise<string | undefined> {
  const basic = login ? `Basic ${Buffer.from(`${login.username}:${login.password}`).toString("base64")}` : undefined;
  if (/^basic/i.test(challenge)) return basic;
  if (!/^bearer/i.test(challenge)) return undefined;
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
  if (!params.realm) return undefined;
  const tokenUrl = new URL(params.realm);
  if (params.service) tokenUrl.searchParams.set("service", params.service);
  if (params.scope) tokenUrl.searchParams.set("scope", params.scope);
  const response = await doFetch(tokenUrl, { headers: basic ? { authorization: basic } : {}, ...(signal ? { signal } : {}) });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`registry token endpoint answered HTTP ${response.status}`);
  }
  const token = TokenSchema.safeParse(await response.json());
  const value = token.success ? (token.data.token ?? token.data.access_token) : undefined;
  return value ? `Bearer ${value}` : undefined;
}
