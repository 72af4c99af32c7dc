/**
 * A minimal OCI distribution client: reads a pushed image's manifest to verify its digest
 * and compute its size, and pushes a config blob and a manifest (a chain's earlier layers,
 * whose layer blobs the last layer's push already uploaded), and streams blobs between
 * registries for pushes to external ones (external-push.ts). Handles the registry token
 * dance (Bearer challenge with basic credentials) and plain basic auth; a refusal carries
 * the registry's own error code and message.
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
const ManifestSchema = z
  .object({ config: Descriptor.optional(), layers: z.array(Descriptor).optional(), manifests: z.array(Descriptor).optional() })
  .loose();
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

/** Options of a {@link RegistrySession}. */
export type RegistrySessionOptions = {
  login?: RegistryLogin | null;
  insecure?: boolean;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Send the login as Basic credentials from the first request (a registry that wants a token still answers 401 with its challenge). */
  basicFirst?: boolean;
};

/** A manifest's bytes as the registry stores them. */
export type FetchedManifest = ManifestInfo & { bytes: Buffer };

/**
 * Requests to one repository of one registry, keeping the authorization the registry asked
 * for (Basic, or a Bearer token from its token endpoint) for the requests after it; a 401
 * (a token without the push scope, say) authorizes again once.
 */
export class RegistrySession {
  readonly #base: string;
  readonly #name: string;
  readonly #options: RegistrySessionOptions;
  #authorization: string | undefined;

  constructor(reference: string, options: RegistrySessionOptions = {}) {
    const { host, name } = parseReference(reference);
    const apiHost = host === "docker.io" ? "registry-1.docker.io" : host;
    this.#base = `${options.insecure ? "http" : "https"}://${apiHost}/v2/${name}`;
    this.#name = name;
    this.#options = options;
    if (options.basicFirst && options.login) this.#authorization = basicAuthorization(options.login);
  }

  /** The manifest `ref` (tag or digest) points at; its digest is computed from the bytes received. */
  async manifest(ref: string): Promise<FetchedManifest> {
    const response = await this.#send("GET", `/manifests/${ref}`, { accept: MANIFEST_TYPES });
    if (!response.ok) throw new Error(await registryMessage(response, `reading the manifest ${this.#name}:${ref}`));
    const bytes = Buffer.from(await response.arrayBuffer());
    return { ...manifestInfo(bytes, `${this.#name}:${ref}`, response.headers.get("content-type")), bytes };
  }

  /** Uploads `bytes` as one blob, in one request where the registry allows (small blobs: no existence check first). */
  async putBlob(bytes: Buffer): Promise<string> {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const started = await this.#send("POST", `/blobs/uploads/?digest=${digest}`, { "content-type": "application/octet-stream" }, bytes);
    await started.body?.cancel();
    if (started.status === 201) return digest;
    // Registries without monolithic POST open a session instead: finish it with one PUT.
    const location = started.headers.get("location");
    if (started.status !== 202 || !location) throw new Error(`registry answered HTTP ${started.status} to a blob upload of ${this.#name}`);
    const url = new URL(location, this.#base);
    url.searchParams.set("digest", digest);
    const finished = await this.#send("PUT", url.toString(), { "content-type": "application/octet-stream" }, bytes);
    await finished.body?.cancel();
    if (finished.status !== 201) throw new Error(`registry answered HTTP ${finished.status} to finishing a blob upload of ${this.#name}`);
    return digest;
  }

  /** True when the repository has the blob (HEAD); a refusal other than 404 throws with the registry's message. */
  async hasBlob(digest: string): Promise<boolean> {
    const response = await this.#send("HEAD", `/blobs/${digest}`);
    await response.body?.cancel();
    if (response.status === 404) return false;
    if (response.ok) return true;
    // A HEAD answer has no body: ask again with GET for the registry's own error message.
    const refused = await this.#send("GET", `/blobs/${digest}`);
    throw new Error(await registryMessage(refused, `checking blob ${digest} of ${this.#name}`));
  }

  /** The blob's bytes as a stream (the caller consumes or cancels it). */
  async blob(digest: string): Promise<Response> {
    const response = await this.#send("GET", `/blobs/${digest}`);
    if (!response.ok || !response.body) throw new Error(await registryMessage(response, `reading blob ${digest} of ${this.#name}`));
    return response;
  }

  /** Uploads a blob of known digest and size from a stream: a session, then one PUT of the whole body. */
  async putBlobStream(digest: string, sizeBytes: number, body: ReadableStream<Uint8Array>): Promise<void> {
    const started = await this.#send("POST", "/blobs/uploads/");
    if (started.status !== 202 || !started.headers.get("location"))
      throw new Error(await registryMessage(started, `starting a blob upload to ${this.#name}`));
    await started.body?.cancel();
    const url = new URL(started.headers.get("location")!, this.#base);
    url.searchParams.set("digest", digest);
    const headers = { "content-type": "application/octet-stream", "content-length": String(sizeBytes) };
    // The upload session authorised the POST; a stream cannot be replayed, so the PUT is sent once.
    const finished = await this.#send("PUT", url.toString(), headers, body, false);
    if (finished.status !== 201) throw new Error(await registryMessage(finished, `uploading blob ${digest} to ${this.#name}`));
    await finished.body?.cancel();
  }

  /** Stores `bytes` as the manifest `ref`; returns its digest, as the registry confirms it. */
  async putManifest(ref: string, bytes: Buffer, mediaType: string): Promise<string> {
    return (await this.putManifestAnswer(ref, bytes, mediaType)).digest;
  }

  /** {@link putManifest}, with the registry's answer headers (`OCI-Subject` says it processed a `subject`). */
  async putManifestAnswer(ref: string, bytes: Buffer, mediaType: string): Promise<{ digest: string; headers: Headers }> {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const response = await this.#send("PUT", `/manifests/${ref}`, { "content-type": mediaType }, bytes);
    if (response.status !== 201) throw new Error(await registryMessage(response, `storing the manifest ${this.#name}:${ref}`));
    await response.body?.cancel();
    const confirmed = response.headers.get("docker-content-digest");
    if (confirmed && confirmed !== digest) throw new Error(`registry stored ${confirmed} for ${this.#name}:${ref}, not ${digest}`);
    return { digest, headers: response.headers };
  }

  /** The manifest `ref` points at, or null when the registry answers 404 (no such tag or digest). */
  async manifestOrNull(ref: string): Promise<FetchedManifest | null> {
    const response = await this.#send("HEAD", `/manifests/${ref}`, { accept: MANIFEST_TYPES });
    await response.body?.cancel();
    return response.status === 404 ? null : this.manifest(ref);
  }

  async #send(
    method: string,
    pathOrUrl: string,
    headers: Record<string, string> = {},
    body?: Buffer | ReadableStream<Uint8Array>,
    retryOn401 = true,
  ): Promise<Response> {
    const url = pathOrUrl.startsWith("/") ? `${this.#base}${pathOrUrl}` : pathOrUrl;
    const doFetch = this.#options.fetch ?? fetch;
    const payload = body instanceof Buffer ? { body: new Uint8Array(body) } : body ? { body, duplex: "half" as const } : {};
    const attempt = () =>
      doFetch(url, {
        method,
        headers: { ...headers, ...(this.#authorization ? { authorization: this.#authorization } : {}) },
        ...payload,
        ...(this.#options.signal ? { signal: this.#options.signal } : {}),
      } as RequestInit);
    const response = await attempt();
    if (response.status !== 401 || !retryOn401) return response;
    await response.body?.cancel();
    this.#authorization = await authorize(
      response.headers.get("www-authenticate") ?? "",
      this.#options.login ?? null,
      doFetch,
      this.#options.signal,
    );
    return attempt();
  }
}

/** Fetches the manifest of `reference`; its digest is computed from the bytes received. */
export async function fetchManifest(reference: string, options: RegistrySessionOptions = {}): Promise<ManifestInfo> {
  const { digest, sizeBytes, mediaType } = await new RegistrySession(reference, options).manifest(parseReference(reference).ref);
  return { digest, sizeBytes, mediaType };
}

/** Digest and total size (config + layers, or the index's manifests) of manifest bytes. */
function manifestInfo(bytes: Buffer, what: string, mediaType: string | null): ManifestInfo {
  const parsed = ManifestSchema.safeParse(JSON.parse(bytes.toString("utf8")));
  if (!parsed.success) throw new Error(`the manifest of ${what} is not an image manifest`);
  const m = parsed.data;
  const sizeBytes = (m.config?.size ?? 0) + [...(m.layers ?? []), ...(m.manifests ?? [])].reduce((sum, d) => sum + d.size, 0);
  return { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, sizeBytes, mediaType };
}

const RegistryErrors = z.object({ errors: z.array(z.object({ code: z.string(), message: z.string().optional() }).loose()) }).loose();

/**
 * What a refusing registry said, as `CODE: message (HTTP n, <what>)`: the OCI distribution
 * error body when it sent one (`UNAUTHORIZED: authentication required`), else the status.
 * Consumes the body.
 */
export async function registryMessage(response: Response, what: string): Promise<string> {
  const text = await response.text().catch(() => "");
  let said = "";
  try {
    const parsed = RegistryErrors.safeParse(JSON.parse(text));
    if (parsed.success && parsed.data.errors.length > 0)
      said = parsed.data.errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join("; ");
  } catch {
    said = text.trim().slice(0, 200);
  }
  return `${said ? `${said} ` : ""}(HTTP ${response.status}, ${what})`;
}

function basicAuthorization(login: RegistryLogin): string {
  return `Basic ${Buffer.from(`${login.username}:${login.password}`).toString("base64")}`;
}

async function authorize(
  challenge: string,
  login: RegistryLogin | null,
  doFetch: typeof fetch,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const basic = login ? basicAuthorization(login) : undefined;
  if (/^basic/i.test(challenge)) return basic;
  if (!/^bearer/i.test(challenge)) return undefined;
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
  if (!params.realm) return undefined;
  const tokenUrl = new URL(params.realm);
  if (params.service) tokenUrl.searchParams.set("service", params.service);
  if (params.scope) tokenUrl.searchParams.set("scope", params.scope);
  const response = await doFetch(tokenUrl, { headers: basic ? { authorization: basic } : {}, ...(signal ? { signal } : {}) });
  if (!response.ok) throw new Error(await registryMessage(response, "the registry's token endpoint refused the login"));
  const token = TokenSchema.safeParse(await response.json());
  const value = token.success ? (token.data.token ?? token.data.access_token) : undefined;
  return value ? `Bearer ${value}` : undefined;
}
