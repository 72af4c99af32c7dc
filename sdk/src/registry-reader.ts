/**
 * Read access to the registry an image is verified in (decision 0024): Kiln's built-in one
 * through the client, or an external one (where `build({ push })` copied the image) over the
 * OCI distribution API, anonymous or with a login from the environment or a docker/containers
 * auth file, following the registry's Bearer token challenge. Referrers come from the
 * referrers API, or, on a registry without it (404), from the referrers tag schema's index
 * (`sha256-<hex>`, distribution-spec 1.1).
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { referrersTag } from "@kiln-build/protocol";
import type { KilnClient } from "./client.ts";

/** A registry login (basic credentials). */
export type RegistryLogin = { username: string; password: string };

/** What verification reads from a registry. */
export type RegistryReader = {
  /** Where the image is, for messages: `host/repository`. */
  readonly name: string;
  /** The bytes of manifest `ref` (tag or digest). */
  manifest(ref: string): Promise<Uint8Array<ArrayBuffer>>;
  /** The bytes of blob `digest`. */
  blob(digest: string): Promise<Uint8Array<ArrayBuffer>>;
  /** The referrers index of `digest` (`{ manifests: [...] }`); empty when there are none. */
  referrers(digest: string): Promise<{ manifests?: { digest: string; artifactType?: string }[] }>;
};

const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

/** The built-in registry, through the Kiln client (its token as the registry login). */
export function builtInReader(client: KilnClient, repository: string): RegistryReader {
  const get = async (kind: string, ref: string) => {
    const response = await client.request("GET", ["v2", ...repository.split("/"), kind, ref], {
      registry: true,
      headers: { accept: MANIFEST_ACCEPT },
    });
    return new Uint8Array(await response.arrayBuffer());
  };
  return {
    name: repository,
    manifest: (ref) => get("manifests", ref),
    blob: (digest) => get("blobs", digest),
    referrers: async (digest) => JSON.parse(new TextDecoder().decode(await get("referrers", digest))),
  };
}

/** Options of {@link externalReader}. */
export type ExternalReaderOptions = { login?: RegistryLogin | null; fetch?: typeof fetch; insecure?: boolean };

/** An external registry's repository, read over the OCI distribution API. */
export function externalReader(host: string, repository: string, options: ExternalReaderOptions = {}): RegistryReader {
  const doFetch = options.fetch ?? fetch;
  const apiHost = host === "docker.io" ? "registry-1.docker.io" : host;
  const base = `${options.insecure ? "http" : "https"}://${apiHost}/v2/${repository}`;
  const login = options.login === undefined ? registryLoginFor(host) : options.login;
  let authorization: string | undefined;
  const send = async (pathname: string, accept = MANIFEST_ACCEPT): Promise<Response> => {
    const attempt = () => doFetch(`${base}${pathname}`, { headers: { accept, ...(authorization ? { authorization } : {}) } });
    const response = await attempt();
    if (response.status !== 401) return response;
    await response.body?.cancel();
    authorization = await authorize(response.headers.get("www-authenticate") ?? "", login, doFetch);
    return attempt();
  };
  const read = async (pathname: string, what: string) => {
    const response = await send(pathname);
    if (!response.ok) throw new Error(`${host}/${repository}: ${what} answered HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  };
  return {
    name: `${host}/${repository}`,
    manifest: (ref) => read(`/manifests/${ref}`, `manifest ${ref}`),
    blob: (digest) => read(`/blobs/${digest}`, `blob ${digest}`),
    async referrers(digest) {
      const api = await send(`/referrers/${digest}`, "application/vnd.oci.image.index.v1+json");
      if (api.ok) return (await api.json()) as { manifests?: { digest: string; artifactType?: string }[] };
      await api.body?.cancel();
      if (api.status !== 404) throw new Error(`${host}/${repository}: the referrers API answered HTTP ${api.status}`);
      // No referrers API: the referrers tag schema's index, or none.
      const tagged = await send(`/manifests/${referrersTag(digest)}`);
      if (tagged.status === 404) return { manifests: [] };
      if (!tagged.ok) throw new Error(`${host}/${repository}: the referrers tag answered HTTP ${tagged.status}`);
      return (await tagged.json()) as { manifests?: { digest: string; artifactType?: string }[] };
    },
  };
}

async function authorize(challenge: string, login: RegistryLogin | null, doFetch: typeof fetch): Promise<string | undefined> {
  const basic = login ? `Basic ${btoa(`${login.username}:${login.password}`)}` : undefined;
  if (/^basic/i.test(challenge)) return basic;
  if (!/^bearer/i.test(challenge)) return basic;
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  if (!params.realm) return basic;
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set("service", params.service);
  if (params.scope) url.searchParams.set("scope", params.scope);
  const response = await doFetch(url, { headers: basic ? { authorization: basic } : {} });
  if (!response.ok) throw new Error(`the registry's token endpoint answered HTTP ${response.status}`);
  const body = (await response.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  return token ? `Bearer ${token}` : basic;
}

/**
 * The login for `host`: `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD`, else the entry for
 * the host in `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json` or the docker
 * config (`$DOCKER_CONFIG/config.json`, `~/.docker/config.json`); null (anonymous) when none.
 * Credential helpers (`credsStore`) are not run.
 */
export function registryLoginFor(host: string, env: NodeJS.ProcessEnv = process.env): RegistryLogin | null {
  if (env.KILN_REGISTRY_USERNAME && env.KILN_REGISTRY_PASSWORD)
    return { username: env.KILN_REGISTRY_USERNAME, password: env.KILN_REGISTRY_PASSWORD };
  const files = [
    env.REGISTRY_AUTH_FILE,
    env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, "containers", "auth.json") : undefined,
    path.join(env.DOCKER_CONFIG ?? path.join(homedir(), ".docker"), "config.json"),
  ];
  const keys =
    host === "docker.io"
      ? ["docker.io", "index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"]
      : [host, `https://${host}`];
  for (const file of files) {
    if (!file) continue;
    let auths: Record<string, { auth?: string }> | undefined;
    try {
      auths = (JSON.parse(readFileSync(file, "utf8")) as { auths?: Record<string, { auth?: string }> }).auths;
    } catch {
      continue;
    }
    for (const key of keys) {
      const encoded = auths?.[key]?.auth;
      if (!encoded) continue;
      const decoded = atob(encoded);
      const colon = decoded.indexOf(":");
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return null;
}
