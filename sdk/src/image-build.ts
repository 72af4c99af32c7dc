/**
 * `image.build()`: describe -> submit the chain (uploading only the contexts the answer names
 * as missing, then submitting again) -> follow the log -> read the result. A cached image is
 * one request. Idempotent per submission (one Idempotency-Key across its retries).
 */
import type { ImageView as ApiImageView, Failure, LayerView } from "@kiln-build/protocol";
import { followLog, LineAssembler, type LogSink, logSink, patiently, sleep } from "./build-logs.ts";
import { terminalFor } from "./cli/terminal.ts";
import type { KilnClient } from "./client.ts";
import type { ResolvedContext } from "./context-manifest.ts";
import { type UploadReport, uploadListed } from "./context-upload.ts";
import { APIError, apiErrorFor, ImageBuildError, InvalidError } from "./errors.ts";
import type { ImageDescription } from "./image-describe.ts";
import type { ImageBuildParams } from "./image-params.ts";
import { pushBody, settledPushes } from "./image-push.ts";
import { uploadProgress } from "./upload-progress.ts";

/** Options of `image.build()`; defined with the other params types. */
export type { ImageBuildParams };

/** One layer of a built image, as the server reports it. */
export type BuiltLayer = LayerView;

/**
 * Why an image failed. Servers before the structured fields send only `reason` and `message`
 * (with the exit code inside the message), so the other fields may be missing.
 */
export type ImageFailure = Pick<Failure, "reason" | "message"> & Partial<Failure>;

/** What the server returns for an image; `failure` may come from an older server. */
export type ImageView = Omit<ApiImageView, "failure"> & { failure: ImageFailure | null };

/** The outcome `Image.build` turns into a built `Image`. */
export type BuildResult = { view: ImageView; upload: UploadReport };

const FINAL = new Set(["succeeded", "failed", "cancelled", "timeout"]);
const TAIL_LINES = 20;

/** Runs one build of a described image on `client`; `label` (a platform) prefixes its log lines when several build at once. */
export async function runBuild(
  client: KilnClient,
  description: ImageDescription,
  contexts: readonly (ResolvedContext | null)[],
  params: ImageBuildParams,
  label?: string,
): Promise<BuildResult> {
  const { timeoutSeconds: limit } = params;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 60 || limit > 86_400)) {
    throw new InvalidError(`image.build: timeoutSeconds must be a whole number of seconds from 60 to 86400, not ${limit}.`);
  }
  params.signal?.throwIfAborted();
  const terminal = terminalFor(process.stderr, process.env, { color: params.color });
  const sink = logSink(params.logs ?? true, process.stderr, terminal);
  try {
    const pending = contexts.filter((c): c is ResolvedContext => c !== null);
    const { submitted, upload } = await submitUploadingMissing(client, description, params, pending, sink);
    const tail: string[] = [];
    const stopCancelling = submitted.buildId ? cancelOnAbort(client, submitted.buildId, params.signal, sink) : () => {};
    try {
      if (!FINAL.has(submitted.status) && submitted.buildId) {
        // Without a display, the log is not worth fetching: wait for the outcome instead.
        if (params.logs ?? true) await streamLog(client, submitted.buildId, description, sink, tail, label);
        else await waitForBuild(client, submitted.buildId);
      }
    } finally {
      stopCancelling();
    }
    const view = completeAnswer(submitted) ?? (await waitForFinal(client, submitted.id));
    if (view.status !== "succeeded") throw buildError(view, description, tail);
    const pushes = await settledPushes(client, view);
    return { view: pushes ? { ...view, pushes } : view, upload };
  } finally {
    sink.close();
  }
}

/**
 * Submits the chain first and uploads only what the answer says is missing, then submits
 * again: an image whose layers (or contexts) the server already has costs one request. The
 * server names every missing manifest and file blob of the layers it must build
 * (`context_not_found`), never those of cached layers, so nothing is uploaded for a layer
 * that will not be built.
 */
async function submitUploadingMissing(
  client: KilnClient,
  description: ImageDescription,
  params: ImageBuildParams,
  pending: readonly ResolvedContext[],
  sink: LogSink,
): Promise<{ submitted: ImageView; upload: UploadReport }> {
  const submit = () =>
    client
      .json<ImageView>("POST", ["v1", "images"], {
        json: { ...submissionBody(description, params), ...pushBody(params) },
        idempotencyKey: crypto.randomUUID(),
      })
      .catch((error: unknown) => {
        throw explainSecretError(error, description);
      });
  sink.status(`Submitting ${description.layers.length} layers`);
  try {
    return { submitted: await submit(), upload: { uploaded: [], bytesUploaded: 0 } };
  } catch (error) {
    const missing = missingContexts(error);
    if (!missing) throw error;
    sink.status("Uploading build contexts");
    const upload = await uploadListed(client, pending, missing, uploadProgress(sink));
    sink.status(`Submitting ${description.layers.length} layers`);
    return { submitted: await submit(), upload };
  }
}

/**
 * The submission's answer as the image's view when it is already complete: a cached image's answer
 * is final and carries every layer's registry result. Anything else (a build, a failure, a server
 * that answers with statuses only) is read with `GET /v1/images/:id`.
 */
function completeAnswer(submitted: ImageView): ImageView | null {
  if (submitted.status !== "succeeded" || submitted.layers.length === 0) return null;
  if (!submitted.layers.every((layer) => typeof layer.reference === "string" && typeof layer.digest === "string")) return null;
  return { ...submitted, failure: submitted.failure ?? null };
}

/** The digests a `context_not_found` answer lists, or null for any other error. */
function missingContexts(error: unknown): Set<string> | null {
  if (!(error instanceof APIError) || error.code !== "context_not_found") return null;
  const listed = (error.details as { missing?: unknown } | undefined)?.missing;
  return Array.isArray(listed) ? new Set(listed.map(String)) : null;
}

/** The `POST /v1/images` body: the chain, the build options, required secret keys and runtime mounts. */
export function submissionBody(
  description: ImageDescription,
  params: Pick<ImageBuildParams, "forceBuild" | "ignoreCache" | "tag" | "timeoutSeconds">,
): Record<string, unknown> {
  return {
    ...description.spec,
    timeoutSeconds: params.timeoutSeconds,
    forceBuild: params.forceBuild || undefined,
    ignoreCache: params.ignoreCache || description.ignoreCache || undefined,
    tag: params.tag,
    // Only when a secret requires keys: an unchanged body keeps the server's parse memo warm.
    ...(Object.keys(description.requiredSecretKeys).length ? { requiredSecretKeys: description.requiredSecretKeys } : {}),
    // Runtime mounts are recorded with the image; their files attach at container start.
    ...(description.runtimeMounts.length
      ? { runtimeMounts: description.runtimeMounts.map((m) => ({ kind: m.kind, remotePath: m.remotePath, context: null })) }
      : {}),
  };
}

/**
 * The server's 422 for a missing secret or missing keys names the secret and an HTTP fix; the
 * SDK's user wants the layers that use it and the CLI command. Same class, code and request id;
 * anything else passes through unchanged.
 */
export function explainSecretError(error: unknown, description: ImageDescription): unknown {
  if (!(error instanceof APIError) || (error.code !== "secret_missing_keys" && error.code !== "secret_not_found")) return error;
  const details = error.details as { secret?: unknown; missingKeys?: unknown } | undefined;
  const name = details?.secret;
  if (typeof name !== "string") return error;
  const users = description.layers.flatMap((l, i) => (l.secrets.includes(name) || l.registryAuth?.secret === name ? [i + 1] : []));
  const usedBy =
    users.length === 0 ? "" : ` (used by layer${users.length > 1 ? "s" : ""} ${users.join(", ")} of ${description.layers.length})`;
  const required = description.requiredSecretKeys[name] ?? [];
  let message: string;
  if (error.code === "secret_missing_keys") {
    const missing = Array.isArray(details?.missingKeys) ? details.missingKeys.map(String) : [];
    message =
      `Secret '${name}'${usedBy} lacks required keys: ${missing.join(", ")}. ` +
      `Store it with every key it needs: kiln secret create ${name} ${required.map((k) => `${k}=...`).join(" ")} ` +
      `(this replaces the secret's values, so list the keys it already has too), ` +
      `or drop the keys from Secret.fromName('${name}', { requiredKeys }).`;
  } else {
    const pairs = required.length ? required.map((k) => `${k}=...`).join(" ") : "KEY=VALUE...";
    message = `Secret '${name}'${usedBy} does not exist in this workspace. Create it: kiln secret create ${name} ${pairs}`;
  }
  return apiErrorFor(error.status, error.code, message, error.requestId, error.details, { cause: error });
}

/**
 * Asks the server to cancel `buildId` when `signal` aborts (at once if it already has); the
 * build's log and status then end as `cancelled`. Returns the function that stops listening.
 */
function cancelOnAbort(client: KilnClient, buildId: string, signal: AbortSignal | undefined, sink: LogSink): () => void {
  if (!signal) return () => {};
  const cancel = () => {
    sink.status(`Cancelling build ${buildId}`);
    client
      .request("POST", ["v1", "builds", buildId, "cancel"])
      .then((response) => response.body?.cancel())
      .catch((error: unknown) => {
        process.emitWarning(`Could not cancel build ${buildId}: ${(error as Error).message}`, { code: "KILN_CANCEL" });
      });
  };
  if (signal.aborted) cancel();
  else signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}

async function streamLog(
  client: KilnClient,
  buildId: string,
  description: ImageDescription,
  sink: LogSink,
  tail: string[],
  label?: string,
) {
  const indexOf = new Map(description.layers.map((l, i) => [l.key, i]));
  const total = description.layers.length;
  const at = label ? `${label} ` : "";
  const prefix = (key: string | null) => (key === null ? `[${at}kiln]` : `[${at}${(indexOf.get(key) ?? 0) + 1}/${total}]`);
  const lines = new LineAssembler();
  const emit = (key: string | null, raw: string, stream: "stdout" | "stderr" | "system") => {
    // The orchestrator writes its own lines as "[kiln] ..."; the prefix is added here once.
    const line = key === null && raw.startsWith("[kiln] ") ? raw.slice("[kiln] ".length) : raw;
    sink.line(prefix(key), line, stream);
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  for await (const chunk of followLog(client, buildId)) {
    if (chunk.layerKey) sink.status(`Building layer ${prefix(chunk.layerKey)}`);
    for (const line of lines.push(chunk)) emit(chunk.layerKey, line, chunk.stream);
  }
  for (const rest of lines.flush()) emit(rest.layerKey, rest.line, rest.stream);
}

/**
 * Long-polls a build until it ends (the server answers at the end or after 20 s), waiting
 * out brief outages like the log follower; an answer that comes back early without an end
 * (a server that does not long-poll) is not asked again at once.
 */
/** Waits (long-polling) until build `buildId` has ended. */
export async function waitForBuild(client: KilnClient, buildId: string): Promise<void> {
  for (;;) {
    const asked = Date.now();
    const build = await patiently(() => client.json<{ status: string }>("GET", ["v1", "builds", buildId], { query: { waitSeconds: 20 } }));
    if (FINAL.has(build.status)) return;
    if (Date.now() - asked < 1000) await sleep(1000);
  }
}

async function waitForFinal(client: KilnClient, imageId: string): Promise<ImageView> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    const view = await client.json<ImageView>("GET", ["v1", "images", imageId]);
    if (FINAL.has(view.status)) return view;
    await new Promise((r) => setTimeout(r, delay));
  }
}

function buildError(view: ImageView, description: ImageDescription, tail: string[]): ImageBuildError {
  const failure: ImageFailure = view.failure ?? { reason: view.status, message: `the build ended as ${view.status}` };
  const layerIndex = failedLayerIndex(failure, view, description);
  const exitCode = exitCodeOf(failure);
  return new ImageBuildError({
    imageId: view.id,
    ...(view.buildId ? { buildId: view.buildId } : {}),
    ...(layerIndex === undefined ? {} : { layerIndex, layerKey: description.layers[layerIndex]!.key }),
    ...(exitCode === undefined ? {} : { exitCode }),
    reason: failure.reason,
    // The exit code is reported on its own; older servers also appended it to the message.
    message: exitCode === undefined ? failure.message : failure.message.replace(new RegExp(` \\(exit code ${exitCode}\\)$`), ""),
    logTail: failure.logTail?.length ? failure.logTail.slice(-TAIL_LINES) : tail,
  });
}

/**
 * The failed layer's index: the server's `layerKey` (else `layerIndex`) when it sends one, else,
 * from older servers, the first layer the view shows as failed.
 */
function failedLayerIndex(failure: ImageFailure, view: ImageView, description: ImageDescription): number | undefined {
  const byKey = (key: string | null | undefined) => (key ? description.layers.findIndex((l) => l.key === key) : -1);
  let index = byKey(failure.layerKey);
  if (index < 0 && typeof failure.layerIndex === "number" && failure.layerIndex < description.layers.length) index = failure.layerIndex;
  // A server that sent the fields and named no layer (a cancel, say) means none.
  if (index < 0 && failure.layerKey === undefined) index = byKey(view.layers.find((l) => l.status === "failed")?.key);
  return index >= 0 ? index : undefined;
}

/**
 * The failing step's exit code: the server's `exitCode` field when it sends one (null: none),
 * else, from older servers, the "(exit code N)" the orchestrator appends to a build failure's message.
 */
export function exitCodeOf(failure: { reason: string; message: string; exitCode?: number | null }): number | undefined {
  if (failure.exitCode !== undefined) return failure.exitCode ?? undefined;
  if (failure.reason !== "build") return undefined;
  const match = /\(exit code (\d+)\)/.exec(failure.message);
  return match ? Number(match[1]) : undefined;
}
