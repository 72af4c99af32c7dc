/**
 * Builds jobs for tests: from an SDK `Image` (so the runner builds exactly the lines and
 * contexts the SDK produces) or by hand, and dispatches them signed.
 */
import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import type { Job, JobLayer } from "@kiln-build/protocol";
import { newWebhookSecret, PROTOCOL_VERSION, signWebhook } from "@kiln-build/protocol";
import { collectContextEntries, resolveContext } from "../../../sdk/src/context.ts";
import { writeContextTar } from "../../../sdk/src/context-tar.ts";
import type { Image } from "../../../sdk/src/index.ts";
import type { ContextSource } from "../../../sdk/src/lowering/types.ts";
import type { FakeOrchestrator } from "./fake-orchestrator.ts";

/** A fresh fleet secret for a test file. */
export const testSecret = (): string => newWebhookSecret();

/** The SDK's deterministic tarball of `sources` (what `kiln` would upload). */
export async function contextTar(sources: ContextSource[]): Promise<Buffer> {
  const entries = await collectContextEntries(sources);
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  await writeContextTar(entries, out);
  return Buffer.concat(chunks);
}

/** A context as the SDK uploads it (decision 0022): the manifest's bytes and each file blob's. */
export type ContextBundle = { manifest: Buffer; blobs: Map<string, Buffer> };

/** The SDK's manifest and blobs of `sources`; `cacheDir` holds the SDK's hash index. */
export async function contextBundle(sources: ContextSource[], cacheDir: string): Promise<ContextBundle> {
  const resolved = (await resolveContext(sources, cacheDir))!;
  const blobs = new Map<string, Buffer>();
  for (const [digest, source] of resolved.blobs) blobs.set(digest, readFileSync(source.absPath));
  return { manifest: Buffer.from(resolved.manifestBytes), blobs };
}

/** Options of {@link jobFromImage}. */
export type JobFromImageOptions = {
  orchestrator: FakeOrchestrator;
  registryHost: string;
  /** Contexts by layer index (the SDK's describe() gives only their digests). */
  contexts?: Record<number, ContextBundle>;
  /** Values of every secret the layers name (an inline secret's `Secret.ref`, `inline-<hash>`). */
  secrets?: Job["secrets"];
  deadlineMs?: number;
  repository?: string;
};

/** Lowers `image` with the SDK and turns every layer into a job layer. */
export async function jobFromImage(image: Image, options: JobFromImageOptions): Promise<Job> {
  const description = await image.describe();
  const layers: JobLayer[] = description.layers.map((layer, index) => {
    const bundle = options.contexts?.[index];
    let context: JobLayer["context"] = null;
    if (layer.context) {
      if (!bundle) throw new Error(`layer ${index} has a context; pass its bundle in options.contexts`);
      context = options.orchestrator.addContext(bundle);
      if (context.digest !== layer.context.digest)
        throw new Error(`layer ${index}: test manifest ${context.digest} differs from the SDK's ${layer.context.digest}`);
    }
    return {
      key: layer.key,
      index,
      dockerfileCommands: layer.dockerfileCommands,
      context,
      secrets: layer.secrets,
      gpu: layer.gpu,
      buildArgs: layer.buildArgs,
      buildFunction: layer.buildFunction,
      pythonStandalone: layer.pythonStandalone,
      baseAuth: layer.registryAuth,
      target: `${options.registryHost}/${options.repository ?? "kiln-test/layers"}:${layer.key}`,
    };
  });
  return makeJob({
    orchestrator: options.orchestrator,
    registryHost: options.registryHost,
    layers,
    secrets: options.secrets ?? {},
    deadlineMs: options.deadlineMs,
  });
}

/** A job around `layers`, with fresh ids. */
export function makeJob(options: {
  orchestrator: FakeOrchestrator;
  registryHost: string;
  layers: JobLayer[];
  secrets?: Job["secrets"];
  deadlineMs?: number | undefined;
  parentReference?: string | null;
}): Job {
  return {
    protocolVersion: PROTOCOL_VERSION,
    jobId: `job_${randomUUID()}`,
    attemptId: `att_${randomUUID()}`,
    fencingToken: 1,
    workspaceId: "ws_test",
    builderVersion: "2025.06",
    parentReference: options.parentReference ?? null,
    layers: options.layers,
    secrets: options.secrets ?? {},
    registry: { host: options.registryHost, credentials: { username: "kiln", password: "registry-password-0123456789" }, insecure: true },
    callback: { eventsUrl: options.orchestrator.eventsUrl, downloadToken: options.orchestrator.downloadToken },
    deadlineMs: options.deadlineMs ?? Date.now() + 60 * 60 * 1000,
  };
}

/** A hand-written layer with a random key. */
export function layer(index: number, name: string, commands: string[], registryHost: string, extra: Partial<JobLayer> = {}): JobLayer {
  const key = createHash("sha256").update(`${name}-${randomUUID()}`).digest("hex");
  return {
    key,
    index,
    dockerfileCommands: commands,
    context: null,
    secrets: [],
    gpu: null,
    buildArgs: {},
    buildFunction: null,
    pythonStandalone: null,
    baseAuth: null,
    target: `${registryHost}/kiln-test/layers:${key}`,
    ...extra,
  };
}

/** POSTs `job` to a runner, signed with `secret`. */
export async function dispatch(runnerUrl: string, job: Job, secret: string, id = `msg_${randomUUID()}`): Promise<Response> {
  const body = JSON.stringify(job);
  return fetch(`${runnerUrl}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", ...signWebhook(secret, id, body) },
    body,
  });
}
