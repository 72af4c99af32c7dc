/**
 * `build({ push, pushSecret, labels, annotations, source, revision })` (decision 0019): the
 * options checked before any network call (targets by the OCI reference grammar, labels
 * bounded), their part of the submission body, and the per-target outcome once the build has
 * ended: a target that failed raises an `ImagePushError` naming it and its registry's message.
 */
import {
  MAX_LABEL_KEY_CHARS,
  MAX_LABEL_VALUE_CHARS,
  MAX_LABELS,
  MAX_PUSH_TARGETS,
  type PushView,
  parsePushReference,
} from "@kiln-build/protocol";
import type { KilnClient } from "./client.ts";
import { ImagePushError, InvalidError } from "./errors.ts";
import { Secret } from "./secret.ts";

/** A push target: a reference (`ghcr.io/org/app:v1`) or one with its own login secret. */
export type PushTargetParam = string | { reference: string; secret?: Secret | string };

/** The push options of `image.build()`. */
export type ImagePushParams = {
  /** Copy the built image to these registries (each `host/name:tag`). */
  push?: PushTargetParam[];
  /** The login for every target without its own: a Kiln secret with REGISTRY_USERNAME/REGISTRY_PASSWORD (GHCR: a PAT), SERVICE_ACCOUNT_JSON (Artifact Registry) or AWS_* (ECR). */
  pushSecret?: Secret | string;
  /** Labels set in the pushed images' config. */
  labels?: Record<string, string>;
  /** Annotations set on the pushed manifests, beside Kiln's `org.opencontainers.image.*`. */
  annotations?: Record<string, string>;
  /** `org.opencontainers.image.source`: the source repository's URL. */
  source?: string;
  /** `org.opencontainers.image.revision`: the source revision (a commit id). */
  revision?: string;
};

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

/** The submission body's push fields; throws `InvalidError` for anything the server would refuse. */
export function pushBody(params: ImagePushParams): Record<string, unknown> {
  const { push, pushSecret, labels, annotations, source, revision } = params;
  if (push === undefined) {
    for (const [name, value] of Object.entries({ pushSecret, labels, annotations, source, revision }))
      if (value !== undefined) throw new InvalidError(`image.build: \`${name}\` applies to pushed images only; add \`push\` targets.`);
    return {};
  }
  if (!Array.isArray(push) || push.length === 0 || push.length > MAX_PUSH_TARGETS)
    throw new InvalidError(`image.build: push must be a list of 1 to ${MAX_PUSH_TARGETS} image references.`);
  const targets = push.map((target) => {
    const reference = typeof target === "string" ? target : target?.reference;
    const parsed = typeof reference === "string" ? parsePushReference(reference) : { error: "not a string" };
    if ("error" in parsed) throw new InvalidError(`image.build: push target ${JSON.stringify(reference)}: ${parsed.error}.`);
    const secret = (typeof target === "string" ? undefined : target.secret) ?? pushSecret;
    return { reference, secret: secret === undefined ? null : secretName(secret) };
  });
  checkLabels("labels", labels);
  checkLabels("annotations", annotations);
  for (const [name, value, max] of [["source", source, 1024] as const, ["revision", revision, 256] as const])
    if (value !== undefined && (typeof value !== "string" || value.length === 0 || value.length > max))
      throw new InvalidError(`image.build: ${name} must be 1 to ${max} characters.`);
  return { push: targets, labels, annotations, source, revision };
}

function secretName(secret: Secret | string): string {
  const name = secret instanceof Secret ? secret.name : Secret.fromName(secret).name;
  if (!name) throw new InvalidError("image.build: pushSecret must be a named secret (Secret.fromName), not Secret.fromDict.");
  return name;
}

function checkLabels(what: string, labels: Record<string, string> | undefined): void {
  if (labels === undefined) return;
  const entries = typeof labels === "object" && labels !== null ? Object.entries(labels) : null;
  if (!entries || entries.length > MAX_LABELS)
    throw new InvalidError(`image.build: ${what} must be an object of at most ${MAX_LABELS} entries.`);
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key) || key.length > MAX_LABEL_KEY_CHARS)
      throw new InvalidError(
        `image.build: ${what} key ${JSON.stringify(key)} must be letters, digits, '.', '_', '/' or '-' (at most ${MAX_LABEL_KEY_CHARS}).`,
      );
    if (typeof value !== "string" || value.length > MAX_LABEL_VALUE_CHARS)
      throw new InvalidError(
        `image.build: ${what} value of ${JSON.stringify(key)} must be a string of at most ${MAX_LABEL_VALUE_CHARS} characters.`,
      );
  }
}

/**
 * The image's push outcomes once none is pending (a result may reach the API a moment after the
 * build's end); throws `ImagePushError` when a target failed.
 */
export async function settledPushes(
  client: KilnClient,
  view: { id: string; buildId: string | null; pushes?: PushView[] },
): Promise<PushView[] | undefined> {
  let pushes = view.pushes;
  for (let delay = 250; pushes?.some((p) => p.status === "pending") && delay <= 8000; delay *= 2) {
    await new Promise((r) => setTimeout(r, delay));
    pushes = (await client.json<{ pushes?: PushView[] }>("GET", ["v1", "images", view.id])).pushes;
  }
  const failed = pushes?.filter((p) => p.status !== "succeeded") ?? [];
  if (failed.length > 0) throw new ImagePushError({ imageId: view.id, buildId: view.buildId, pushes: pushes!, failed });
  return pushes;
}
