/**
 * `image.build()`: describe -> upload missing contexts -> submit the chain -> follow the
 * log -> read the result. Idempotent per call (one Idempotency-Key across retries).
 */
import { LineAssembler, followLog, logSink } from "./build-logs.ts";
import type { KilnClient } from "./client.ts";
import { uploadContexts, type UploadReport } from "./context-upload.ts";
import { ImageBuildError } from "./errors.ts";
import type { ImageDescription } from "./image-describe.ts";
import type { ContextSource } from "./lowering/types.ts";

/** Options of `image.build()`. */
export type ImageBuildParams = {
  client?: KilnClient;
  /** Point this tag at the built image. */
  tag?: string;
  /** Rebuild every layer and replace the cached results. */
  forceBuild?: boolean;
  /** Rebuild without reading or replacing the cache. */
  ignoreCache?: boolean;
  /** Stream build output to stderr (default true). */
  logs?: boolean;
};

/** One layer of a built image, as the server reports it. */
export type BuiltLayer = { index: number; key: string; status: string; cached: boolean; digest: string | null; reference: string | null };

/** What the server returns for an image. */
export type ImageView = {
  id: string;
  status: "queued" | "building" | "succeeded" | "failed" | "cancelled" | "timeout";
  buildId: string | null;
  failure: { reason: string; message: string; exitCode?: number | null; layerKey?: string | null; logTail?: string[] } | null;
  layers: BuiltLayer[];
};

/** The outcome `Image.build` turns into a built `Image`. */
export type BuildResult = { view: ImageView; upload: UploadReport };

const FINAL = new Set(["succeeded", "failed", "cancelled", "timeout"]);
const TAIL_LINES = 20;

/** Runs one build of a described image on `client`. */
export async function runBuild(
  client: KilnClient,
  description: ImageDescription,
  sources: readonly ContextSource[][],
  params: ImageBuildParams,
): Promise<BuildResult> {
  const sink = logSink(params.logs ?? true);
  try {
    sink.status("Uploading build contexts");
    const pending = description.layers.flatMap((layer, i) => (layer.context ? [{ ...layer.context, sources: sources[i]! }] : []));
    const upload = await uploadContexts(client, pending);
    sink.status(`Submitting ${description.layers.length} layers`);
    const submitted = await client.json<ImageView>("POST", ["v1", "images"], {
      json: {
        ...description.spec,
        forceBuild: params.forceBuild || undefined,
        ignoreCache: params.ignoreCache || description.ignoreCache || undefined,
        tag: params.tag,
        // Runtime mounts are recorded with the image; their files attach at container start.
        ...(description.runtimeMounts.length
          ? { runtimeMounts: description.runtimeMounts.map((m) => ({ kind: m.kind, remotePath: m.remotePath, context: null })) }
          : {}),
      },
      idempotencyKey: crypto.randomUUID(),
    });
    const tail: string[] = [];
    if (!FINAL.has(submitted.status) && submitted.buildId) {
      await streamLog(client, submitted.buildId, description, sink, tail);
    }
    const view = await waitForFinal(client, submitted.id);
    if (view.status !== "succeeded") throw buildError(view, description, tail);
    return { view, upload };
  } finally {
    sink.close();
  }
}

async function streamLog(client: KilnClient, buildId: string, description: ImageDescription, sink: ReturnType<typeof logSink>, tail: string[]) {
  const indexOf = new Map(description.layers.map((l, i) => [l.key, i]));
  const total = description.layers.length;
  const prefix = (key: string | null) => (key === null ? "[kiln]" : `[${(indexOf.get(key) ?? 0) + 1}/${total}]`);
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

async function waitForFinal(client: KilnClient, imageId: string): Promise<ImageView> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    const view = await client.json<ImageView>("GET", ["v1", "images", imageId]);
    if (FINAL.has(view.status)) return view;
    await new Promise((r) => setTimeout(r, delay));
  }
}

function buildError(view: ImageView, description: ImageDescription, tail: string[]): ImageBuildError {
  const failure = view.failure ?? { reason: view.status, message: `the build ended as ${view.status}` };
  const failedKey = failure.layerKey ?? view.layers.find((l) => l.status === "failed")?.key;
  const layerIndex = failedKey === undefined ? undefined : description.layers.findIndex((l) => l.key === failedKey);
  return new ImageBuildError({
    imageId: view.id,
    ...(view.buildId ? { buildId: view.buildId } : {}),
    ...(layerIndex !== undefined && layerIndex >= 0 ? { layerIndex } : {}),
    ...(exitCodeOf(failure) === undefined ? {} : { exitCode: exitCodeOf(failure)! }),
    reason: failure.reason,
    message: failure.message,
    logTail: failure.logTail?.length ? failure.logTail : tail,
  });
}

/**
 * The failing step's exit code: the server's `exitCode` field when it sends one, else the
 * "(exit code N)" the orchestrator appends to a build failure's message.
 */
export function exitCodeOf(failure: { reason: string; message: string; exitCode?: number | null }): number | undefined {
  if (typeof failure.exitCode === "number") return failure.exitCode;
  if (failure.reason !== "build") return undefined;
  const match = /\(exit code (\d+)\)/.exec(failure.message);
  return match ? Number(match[1]) : undefined;
}
