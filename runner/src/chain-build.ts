/**
 * Builds a chain of layers (chain-plan.ts) in one backend session: the layers' Dockerfiles
 * joined into one, an image committed after every step, and each layer's image the step
 * image of its last step.
 *
 * Publishing waits for the build: a push reads the storage under the lock a commit needs, so
 * pushing beside a running chain only slows both. Then the last image is pushed by the
 * backend, and the earlier ones, whose layer blobs it has just uploaded, need only their
 * config blob and a manifest each (registry-client.ts), side by side.
 *
 * Output is read line by line: buildah's `STEP n/m` lines say which layer is building (its
 * log lines and a failure are charged to that layer), and the `--> <id>` line that ends a
 * step names the step's image. A step's image is taken only once the next step has begun,
 * from the last such line before it, so a RUN step that prints look-alike lines can at most
 * break its own build.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import type { JobLayer } from "@kiln-build/protocol";
import type { BuildRequest, ChainProgress } from "./backends/types.ts";
import { joinChain } from "./chain-plan.ts";
import { infraFailure, JobFailure, toJobFailure } from "./failure.ts";
import {
  type BuiltLayer,
  buildRequest,
  type LayerBuildEnv,
  type LayerInputs,
  type LayerResult,
  layerOutput,
  layerPieces,
  runTool,
  type ToolOutput,
} from "./layer-build.ts";
import type { OutputSink } from "./log-shipper.ts";
import { failedOutcome, type StepTracker } from "./phase-recorder.ts";
import { runProcess } from "./process.ts";
import { parseReference, RegistrySession } from "./registry-client.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

/** One layer of a chain with its position in the job and its prepared inputs. */
export type ChainMember = { layer: JobLayer; index: number; inputs: LayerInputs };

/**
 * Builds `members` (consecutive layers of the job) on `parentReference` in one session and
 * hands every layer to `onBuilt`, in order, with its publication already under way. A failed
 * step fails the layer it belongs to; the layers finished before it are still handed on.
 */
export async function buildChain(
  env: LayerBuildEnv,
  members: readonly ChainMember[],
  parentReference: string | null,
  onBuilt: (built: BuiltLayer) => void,
): Promise<void> {
  const { job, backend, shipper } = env;
  const first = members[0]!;
  const last = members.at(-1)!;
  const pieces = [];
  for (const [i, member] of members.entries()) {
    const parent = i === 0 ? parentReference : members[i - 1]!.layer.target;
    pieces.push(
      await layerPieces(env, member.layer, member.index, parent, member.inputs, {
        secretId: `kiln-env-${member.index}`,
        runFlags: [],
        continuesChain: i > 0,
      }),
    );
  }
  const chain = joinChain(pieces.map((p) => p.dockerfileText));
  // At most one layer of a chain reads a context (chain-plan.ts); the others' are empty.
  const reader = members.find((m) => m.layer.context || m.layer.pythonStandalone || m.layer.buildFunction) ?? first;
  const request = await buildRequest(
    env,
    { layer: last.layer, dir: last.inputs.dir, contextDir: reader.inputs.contextDir, parentReference },
    {
      dockerfileText: chain.text,
      secrets: pieces.flatMap((p) => (p.secret ? [p.secret] : [])),
      logins: pieces.flatMap((p) => p.logins),
      pullHosts: pieces.flatMap((p) => p.pullHosts),
      gpus: [],
      stepImages: true,
    },
  );

  const memberRequest = (member: ChainMember): BuildRequest => ({
    ...request,
    target: member.layer.target,
    metadataFile: path.join(member.inputs.dir, "digest"),
  });
  const tagged = (member: ChainMember, image: string): Promise<void> => {
    const tag = backend.tag(image, member.layer.target);
    if (!tag) return Promise.resolve();
    return runProcess(tag, { signal: env.signal, killGraceMs: env.config.killGraceMs }).then((result) => {
      if (result.exitCode !== 0)
        throw new JobFailure(
          "infra",
          `${backend.name} could not name step image ${image} as ${member.layer.target} (exit ${result.exitCode ?? result.signal})`,
          { layerKey: member.layer.key },
        );
    });
  };
  const router = new ChainRouter(env, members, chain.lastSteps, chain.totalSteps, (line) => backend.chainProgress(line));
  const steps = env.phases?.steps(first.layer.key);
  router.steps = steps ?? null;

  const span = `${first.index + 1}-${last.index + 1}`;
  for (const member of members)
    shipper.system(member.layer.key, `building layers ${span}/${job.layers.length} in one ${backend.name} session`);
  try {
    await runTool(env, backend.build(request), "build", router.output());
    if (router.problem) throw router.problem;
    if (router.images.length !== members.length - 1)
      throw new JobFailure("infra", `${backend.name} finished without reporting the image of every layer's last step`, {
        layerKey: last.layer.key,
      });
    steps?.end("ok");
  } catch (error) {
    const { outcome, exitCode } = failedOutcome(error);
    steps?.end(outcome, exitCode);
    // The layers finished before the failure are still built: name them and hand them on.
    for (const [j, image] of router.images.entries())
      onBuilt({ layer: members[j]!.layer, request: memberRequest(members[j]!), ready: quiet(tagged(members[j]!, image)) });
    throw error;
  } finally {
    router.end();
  }

  // The last layer's image holds every blob of the chain, so it is pushed first (by the
  // backend) and the earlier layers' images need only their config and a manifest listing a
  // prefix of its layers, uploaded side by side.
  const lastPublished = quiet(publishLast(env, last.layer, request));
  for (const [j, image] of router.images.entries()) {
    const member = members[j]!;
    // Reading the config (local storage, shared lock) overlaps the last image's push.
    const config = quiet(localConfig(env, image));
    const pushed = quiet(
      Promise.all([tagged(member, image), config, lastPublished]).then(([, own, final]) => publishPrefix(env, member.layer, own, final)),
    );
    onBuilt({ layer: member.layer, request: memberRequest(member), pushed });
  }
  onBuilt({ layer: last.layer, request, pushed: quiet(lastPublished.then((final) => final.result)) });
}

/** The chain's last image as pushed: what is reported for it, and its manifest and config for the layers before it. */
type PublishedLast = { result: LayerResult; manifest: ChainManifest; diffIds: string[]; session: RegistrySession };

type ChainManifest = { config: { mediaType: string }; layers: { digest: string; size: number }[] };

/** Pushes the chain's last image with the backend and reads back exactly what the registry holds. */
async function publishLast(env: LayerBuildEnv, layer: JobLayer, request: BuildRequest): Promise<PublishedLast> {
  const { job, backend, shipper } = env;
  try {
    const config = quiet(localConfig(env, layer.target));
    const push = backend.push(request);
    if (push) {
      shipper.system(layer.key, `pushing ${layer.target}`);
      await runTool(env, push, "push", layerOutput(env, layer));
    }
    const [digest, { diffIds }] = await Promise.all([backend.digest(request), config]);
    // The job's own registry takes its credentials as they are: no token exchange per request.
    const session = new RegistrySession(layer.target, {
      login: env.targetLogin,
      insecure: job.registry.insecure,
      signal: env.signal,
      basicFirst: true,
      ...(env.fetch ? { fetch: env.fetch } : {}),
    });
    const pushed = await session.manifest(parseReference(layer.target).ref);
    if (pushed.digest !== digest)
      throw infraFailure(`the registry holds ${pushed.digest} for ${layer.target}, but ${backend.name} reported pushing ${digest}`);
    const manifest = JSON.parse(pushed.bytes.toString("utf8")) as ChainManifest;
    return { result: { digest, sizeBytes: pushed.sizeBytes, reference: layer.target }, manifest, diffIds, session };
  } catch (error) {
    throw asLayerFailure(env, layer, error);
  }
}

/**
 * Publishes an earlier layer of a chain: its local config, and a manifest whose layers are the
 * first ones of the last image's manifest. Its diff ids must be a prefix of the last image's,
 * which makes those blobs exactly its layers.
 */
async function publishPrefix(env: LayerBuildEnv, layer: JobLayer, config: LocalConfig, last: PublishedLast): Promise<LayerResult> {
  try {
    if (!config.diffIds.every((id, i) => last.diffIds[i] === id) || config.diffIds.length > last.manifest.layers.length) {
      throw infraFailure(`the step image of ${layer.target} is not a base of the chain's last image`);
    }
    // The local config is the OCI one: it fits only an OCI manifest (a Docker v2s2 push converts its config).
    if (last.manifest.config.mediaType !== OCI_CONFIG)
      throw infraFailure(
        `the chain's last image was pushed with a ${last.manifest.config.mediaType} config; only OCI images can share its blobs`,
      );
    const configDigest = await last.session.putBlob(config.bytes);
    const layers = last.manifest.layers.slice(0, config.diffIds.length);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.bytes.length },
        layers,
      }),
    );
    const digest = await last.session.putManifest(parseReference(layer.target).ref, manifest, OCI_MANIFEST);
    return { digest, sizeBytes: config.bytes.length + layers.reduce((sum, l) => sum + l.size, 0), reference: layer.target };
  } catch (error) {
    throw asLayerFailure(env, layer, error);
  }
}

/** A local image's config blob and its diff ids. */
type LocalConfig = { bytes: Buffer; diffIds: string[] };

/** Reads a local image's config (checked against the image id when `image` is one). */
async function localConfig(env: LayerBuildEnv, image: string): Promise<LocalConfig> {
  const command = env.backend.imageConfig(image);
  if (!command) throw infraFailure(`${env.backend.name} cannot read local image configs`);
  const chunks: Buffer[] = [];
  const collect: OutputSink = {
    write: (data) => {
      chunks.push(data);
      return true;
    },
    waitForDrain: () => Promise.resolve(),
    end: () => {},
  };
  const result = await runProcess(command, { stdout: collect, signal: env.signal, killGraceMs: env.config.killGraceMs });
  if (result.aborted) throw env.stopped();
  if (result.exitCode !== 0)
    throw infraFailure(`${env.backend.name} could not read the config of ${image} (exit ${result.exitCode ?? result.signal})`);
  let bytes = Buffer.concat(chunks);
  // A step image is named by a prefix of its id, the config's sha256: check that these are its bytes.
  if (/^[0-9a-f]+$/.test(image)) {
    const hashes = (b: Buffer) => createHash("sha256").update(b).digest("hex").startsWith(image);
    if (!hashes(bytes) && bytes.at(-1) === 0x0a) bytes = bytes.subarray(0, -1);
    if (!hashes(bytes)) throw infraFailure(`the config ${env.backend.name} printed for ${image} does not hash to its id`);
  }
  const parsed = JSON.parse(bytes.toString("utf8")) as { rootfs?: { diff_ids?: unknown } };
  const diffIds = Array.isArray(parsed.rootfs?.diff_ids) ? parsed.rootfs.diff_ids.map(String) : [];
  return { bytes, diffIds };
}

function asLayerFailure(env: LayerBuildEnv, layer: JobLayer, error: unknown): JobFailure {
  const failure = env.signal.aborted ? env.stopped() : toJobFailure(error);
  failure.layerKey ??= layer.key;
  return failure;
}

/** Marks a promise's rejection handled: whoever awaits it later still sees the error. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * Splits a chain build's output into lines, charges each to the layer whose step is running,
 * and names layer images as steps end.
 */
class ChainRouter {
  readonly #env: LayerBuildEnv;
  readonly #members: readonly ChainMember[];
  readonly #lastSteps: readonly number[];
  readonly #totalSteps: number;
  readonly #progress: (line: string) => ChainProgress | null;
  readonly #sinks = new Map<string, OutputSink>();
  #step = 0;
  #stepImage: string | null = null;
  #member = 0;
  /** The image of each layer whose last step has ended, in layer order. */
  readonly images: string[] = [];
  problem: JobFailure | null = null;
  /** Reads the step boundaries for the timeline, each charged to the layer whose step runs. */
  steps: StepTracker | null = null;

  constructor(
    env: LayerBuildEnv,
    members: readonly ChainMember[],
    lastSteps: readonly number[],
    totalSteps: number,
    progress: (line: string) => ChainProgress | null,
  ) {
    this.#env = env;
    this.#members = members;
    this.#lastSteps = lastSteps;
    this.#totalSteps = totalSteps;
    this.#progress = progress;
  }

  /** The tool's two output streams, and the layer a failure belongs to. */
  output(): ToolOutput {
    return { stdout: this.#stream("stdout"), stderr: this.#stream("stderr"), failedLayer: () => this.#members[this.#member]!.layer };
  }

  /** Ends every layer's log streams. */
  end(): void {
    for (const sink of this.#sinks.values()) sink.end();
    this.#sinks.clear();
  }

  #stream(stream: "stdout" | "stderr"): OutputSink {
    const decoder = new TextDecoder("utf-8");
    let partial = "";
    const forward = (text: string): boolean => {
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      let ok = true;
      for (const line of lines) {
        if (stream === "stdout") {
          this.#read(line);
          this.steps?.line(this.#members[this.#member]!.layer.key, line);
        }
        ok = this.#sink(stream).write(Buffer.from(`${line}\n`)) && ok;
      }
      return ok;
    };
    return {
      write: (data) => forward(decoder.decode(data, { stream: true })),
      waitForDrain: () => this.#sink(stream).waitForDrain(),
      end: () => {
        forward(decoder.decode());
        if (partial !== "") this.#sink(stream).write(Buffer.from(partial));
        partial = "";
      },
    };
  }

  /** The current layer's sink for `stream`. */
  #sink(stream: "stdout" | "stderr"): OutputSink {
    const key = this.#members[this.#member]!.layer.key;
    const id = `${key}:${stream}`;
    let sink = this.#sinks.get(id);
    if (!sink) {
      sink = this.#env.shipper.sink(key, stream);
      this.#sinks.set(id, sink);
    }
    return sink;
  }

  #read(line: string): void {
    const progress = this.#progress(line);
    if (!progress) return;
    if ("image" in progress) {
      this.#stepImage = progress.image;
      return;
    }
    if (progress.totalSteps !== this.#totalSteps) {
      this.problem ??= new JobFailure(
        "infra",
        `the build reports ${progress.totalSteps} steps where the joined Dockerfile has ${this.#totalSteps}`,
        { layerKey: this.#members[this.#member]!.layer.key },
      );
      return;
    }
    // The step before this one has ended: if it was a layer's last, that layer is built.
    const ended = this.#step;
    const boundary = this.#lastSteps.indexOf(ended);
    if (boundary >= 0 && boundary === this.images.length && boundary < this.#members.length - 1) {
      if (this.#stepImage === null) {
        this.problem ??= new JobFailure("infra", `the build did not report the image of step ${ended}`, {
          layerKey: this.#members[boundary]!.layer.key,
        });
      } else {
        this.images.push(this.#stepImage);
      }
    }
    this.#step = progress.step;
    this.#stepImage = null;
    const member = this.#lastSteps.findIndex((lastStep) => progress.step <= lastStep);
    if (member >= this.#member) this.#member = member;
  }
}
