/**
 * Composes the job a build dispatches (`JobSchema` of @kiln-build/protocol), pure:
 * target and pinned registry references, context URLs, and only the declared secrets.
 */

import { type Job, type JobLayer, type JobPush, PROTOCOL_VERSION } from "@kiln-build/protocol";
import { contextDownloadPath } from "../workers/contexts/upload-plan.ts";
import type { BuildLayer } from "./build-spec.ts";
import type { BuildMode } from "./join-policy.ts";

/** The registry host of an origin: the Worker's own host (`127.0.0.1:8787`, `kiln.example.com`). */
export function registryHost(origin: string): string {
  return new URL(origin).host;
}

/**
 * The tag a layer is pushed to. Normal and forced builds push `layers:<key>` (a forced build
 * replaces the cached result); `ignoreCache` builds push a tag of their own so the cached
 * image's tag is never moved.
 */
export function targetReference(origin: string, workspaceName: string, key: string, mode: BuildMode, buildId: string): string {
  const tag = mode === "ignore" ? `${key}-${buildId}` : key;
  return `${registryHost(origin)}/${workspaceName}/layers:${tag}`;
}

/** `repo:tag` (or `repo@digest`) pinned to `digest`: what D1 stores, so later pushes to the tag change nothing. */
export function pinnedReference(reference: string, digest: string): string {
  const at = reference.indexOf("@");
  const base = at >= 0 ? reference.slice(0, at) : reference;
  const slash = base.lastIndexOf("/");
  const colon = base.lastIndexOf(":");
  const repo = colon > slash ? base.slice(0, colon) : base;
  return `${repo}@${digest}`;
}

/** The secret names a job's layers declare, their registry secrets included, sorted. */
export function declaredSecrets(layers: readonly BuildLayer[]): string[] {
  const names = new Set<string>();
  for (const { spec } of layers) {
    for (const name of spec.secrets) names.add(name);
    if (spec.registryAuth) names.add(spec.registryAuth.secret);
  }
  return [...names].sort();
}

/** Everything a job needs besides the build's layers. */
export type JobInput = {
  buildId: string;
  workspaceId: string;
  workspaceName: string;
  origin: string;
  mode: BuildMode;
  builderVersion: string;
  attemptId: string;
  fencingToken: number;
  parentReference: string | null;
  /** The layers still to build, in order. */
  layers: readonly BuildLayer[];
  secrets: Record<string, Record<string, string>>;
  /** The per-attempt job token: registry password and context download bearer. */
  token: string;
  deadlineMs: number;
  /** The submission's push to external registries (decision 0019). */
  push?: JobPush;
};

/** The job to sign and POST to the fleet. */
export function composeJob(input: JobInput): Job {
  const layers = input.layers.map(
    ({ index, key, spec }): JobLayer => ({
      key,
      index,
      dockerfileCommands: spec.dockerfileCommands,
      context: spec.context && { ...spec.context, url: `${input.origin}${contextDownloadPath(spec.context.digest)}` },
      secrets: spec.secrets,
      gpu: spec.gpu,
      buildArgs: spec.buildArgs,
      buildFunction: spec.buildFunction,
      pythonStandalone: spec.pythonStandalone,
      ...(spec.dockerfileTarget === undefined ? {} : { dockerfileTarget: spec.dockerfileTarget }),
      ...(spec.platform === undefined ? {} : { platform: spec.platform }),
      baseAuth: spec.registryAuth,
      target: targetReference(input.origin, input.workspaceName, key, input.mode, input.buildId),
    }),
  );
  return {
    protocolVersion: PROTOCOL_VERSION,
    jobId: input.buildId,
    attemptId: input.attemptId,
    fencingToken: input.fencingToken,
    workspaceId: input.workspaceId,
    builderVersion: input.builderVersion,
    parentReference: input.parentReference,
    layers,
    secrets: input.secrets,
    registry: {
      host: registryHost(input.origin),
      credentials: { username: "kiln-job", password: input.token },
      insecure: new URL(input.origin).protocol === "http:",
    },
    callback: { eventsUrl: `${input.origin}/v1/runner/events`, downloadToken: input.token },
    deadlineMs: input.deadlineMs,
    ...(input.push ? { push: input.push } : {}),
  };
}
