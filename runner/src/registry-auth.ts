/**
 * Registry credentials: the job's push/pull login for its target registry and the base
 * image's login for private registries (static username/password, Google Artifact Registry
 * via `_json_key`, AWS ECR via a SigV4-signed GetAuthorizationToken). Logins reach the
 * build tools only through a 0600 auth file, never through argv (visible in `ps`) or logs.
 */
import { writeFile } from "node:fs/promises";
import { type Job, type JobLayer, type PushTarget, parsePushReference } from "@kiln-build/protocol";
import { AwsClient } from "aws4fetch";
import { z } from "zod";
import { pulledImages } from "./base-images.ts";
import { infraFailure } from "./failure.ts";

/** A username/password pair for one registry host. */
export type RegistryLogin = { host: string; username: string; password: string };

/** Where ECR's API lives; `{region}` is substituted. Overridable for tests and GovCloud/China partitions. */
export const DEFAULT_ECR_ENDPOINT = "https://api.ecr.{region}.amazonaws.com/";

/** The host part of an image reference (`docker.io` for Docker Hub short names). */
export function registryHostOf(reference: string): string {
  const slash = reference.indexOf("/");
  if (slash === -1) return "docker.io";
  const first = reference.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : "docker.io";
}

/** The auth file both containers/image (`--authfile`) and Docker/BuildKit (`$DOCKER_CONFIG/config.json`) read. */
export function authFileJson(logins: readonly RegistryLogin[]): string {
  const auths: Record<string, { auth: string }> = {};
  for (const login of logins) {
    const auth = { auth: Buffer.from(`${login.username}:${login.password}`).toString("base64") };
    auths[login.host] = auth;
    // Docker's CLI keys Docker Hub by its legacy index URL.
    if (login.host === "docker.io") auths["https://index.docker.io/v1/"] = auth;
  }
  return `${JSON.stringify({ auths }, null, 2)}\n`;
}

/** Writes an auth file readable only by the runner. */
export async function writeAuthFile(file: string, logins: readonly RegistryLogin[]): Promise<void> {
  await writeFile(file, authFileJson(logins), { mode: 0o600 });
}

/** Every string that would reveal a login if printed (for the log masker). */
export function loginSecrets(login: RegistryLogin): string[] {
  return [login.password, Buffer.from(`${login.username}:${login.password}`).toString("base64")];
}

/** Options for resolving base-image logins. */
export type BaseLoginOptions = { ecrEndpoint?: string; signal?: AbortSignal };

/**
 * The login a root layer needs for its base image (its first FROM, ARGs expanded with the
 * layer's build args), from the secret its `baseAuth` names; null when it needs none.
 */
export async function baseImageLogin(
  layer: JobLayer,
  secrets: Job["secrets"],
  options: BaseLoginOptions = {},
): Promise<RegistryLogin | null> {
  if (!layer.baseAuth) return null;
  const reference = pulledImages(layer.dockerfileCommands, { buildArgs: layer.buildArgs }).base;
  if (!reference) throw infraFailure("the layer declares registry credentials but pulls no base image (no FROM line, or FROM scratch)");
  const values = secrets[layer.baseAuth.secret];
  if (!values)
    throw infraFailure(`the job does not carry the registry secret ${JSON.stringify(layer.baseAuth.secret)} the base image needs`);
  return loginFromSecret(layer.baseAuth.kind, layer.baseAuth.secret, values, registryHostOf(reference), options);
}

/**
 * The login for a push target (decision 0019) from the Kiln secret it names, null for none.
 * The kind follows the secret's keys: `SERVICE_ACCOUNT_JSON` (Artifact Registry), `AWS_ACCESS_KEY_ID`
 * (ECR, a token by SigV4), else `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` (Docker Hub, GHCR with a
 * personal access token, Quay, any basic-auth registry).
 */
export async function pushLogin(
  target: PushTarget,
  secrets: Job["secrets"],
  options: BaseLoginOptions = {},
): Promise<RegistryLogin | null> {
  if (!target.secret) return null;
  const parts = parsePushReference(target.reference);
  if ("error" in parts) throw infraFailure(`push target ${target.reference}: ${parts.error}`);
  const values = secrets[target.secret];
  if (!values) throw infraFailure(`the job does not carry the registry secret ${JSON.stringify(target.secret)} the push needs`);
  const kind = values.SERVICE_ACCOUNT_JSON ? "gcp" : values.AWS_ACCESS_KEY_ID ? "aws" : "static";
  return loginFromSecret(kind, target.secret, values, parts.host, options);
}

/** A login of `kind` for `host` from a secret's values; a missing key names the secret and the key to add. */
async function loginFromSecret(
  kind: "static" | "gcp" | "aws",
  secretName: string,
  values: Record<string, string>,
  host: string,
  options: BaseLoginOptions,
): Promise<RegistryLogin> {
  const need = (key: string): string => {
    const value = values[key];
    if (!value) throw infraFailure(`registry secret ${JSON.stringify(secretName)} has no ${key}; add it to the secret`);
    return value;
  };
  switch (kind) {
    case "static":
      return { host, username: need("REGISTRY_USERNAME"), password: need("REGISTRY_PASSWORD") };
    case "gcp":
      // Artifact Registry's documented key-file login: user `_json_key`, the whole JSON as password.
      return { host, username: "_json_key", password: need("SERVICE_ACCOUNT_JSON") };
    case "aws": {
      const region = values.AWS_REGION || /\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/.exec(host)?.[1];
      if (!region) throw infraFailure(`registry secret ${JSON.stringify(secretName)} has no AWS_REGION and ${host} names none`);
      const token = await ecrAuthorization(
        {
          accessKeyId: need("AWS_ACCESS_KEY_ID"),
          secretAccessKey: need("AWS_SECRET_ACCESS_KEY"),
          sessionToken: values.AWS_SESSION_TOKEN,
          region,
        },
        options,
      );
      return { host, ...token };
    }
  }
}

const EcrTokenResponse = z.object({ authorizationData: z.array(z.object({ authorizationToken: z.string() }).loose()).min(1) }).loose();

/** AWS credentials and region for ECR. */
export type AwsCredentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined; region: string };

/** Calls ECR `GetAuthorizationToken` (SigV4, service `ecr`) and decodes its `AWS:<password>` token. */
export async function ecrAuthorization(
  credentials: AwsCredentials,
  options: BaseLoginOptions = {},
): Promise<{ username: string; password: string }> {
  const client = new AwsClient({
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
    service: "ecr",
    region: credentials.region,
    retries: 2,
  });
  const url = (options.ecrEndpoint ?? DEFAULT_ECR_ENDPOINT).replace("{region}", credentials.region);
  let response: Response;
  try {
    response = await client.fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
      },
      body: "{}",
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    throw infraFailure(`could not reach AWS ECR at ${url}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = await response.text();
  if (!response.ok) {
    // AWS error bodies carry a type and message, never the caller's secret.
    const type = /"__type"\s*:\s*"([^"]+)"/.exec(text)?.[1] ?? `HTTP ${response.status}`;
    throw infraFailure(`AWS ECR refused GetAuthorizationToken (${type}); check the AWS credentials in the registry secret`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  const parsed = EcrTokenResponse.safeParse(json);
  const token = parsed.success ? parsed.data.authorizationData[0]!.authorizationToken : null;
  if (token === null) throw infraFailure("AWS ECR answered GetAuthorizationToken without a token");
  const decoded = Buffer.from(token, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon === -1) throw infraFailure("AWS ECR returned a malformed authorization token");
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
