import { registerLayerImage } from "../security/workers/registry-images.ts";
// An image view's failure details (workers/images/view.ts): the exit code, the failed layer and
// the log tail, stored in the build's D1 row or derived from it and the layers it produced, and
// what `GET /v1/images/:id` shows after a runner reports a failed step.

import { FAILURE_LOG_TAIL_LINES } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { type BuildRowLike, type ImageRowLike, imageView, type LayerResultRow } from "../../workers/images/view.ts";
import { apiJson, chain, digestFor, dispatchedBuild, newFleet, newTenant, nthJob, sendEvent, settle, submitImage } from "./helpers.ts";

const KEYS = ["a".repeat(64), "b".repeat(64), "c".repeat(64)];
const image: ImageRowLike = { id: "im-x", layerKeys: KEYS, buildId: "bd-x", mode: "normal", freshFrom: 3, createdAt: new Date(0) };
const result = (key: string): LayerResultRow => ({
  key,
  digest: digestFor(key),
  reference: `kiln.test/ws/layers@${digestFor(key)}`,
  sizeBytes: 1,
  buildId: "bd-x",
});
// The first layer came from the cache, the second from the build; the third failed.
const cache = new Map([[KEYS[0]!, result(KEYS[0]!)]]);
const own = new Map([[KEYS[1]!, result(KEYS[1]!)]]);
const failed = (reason: string, message: string, extra: Partial<BuildRowLike> = {}): BuildRowLike => ({
  status: "failed",
  failureReason: reason,
  failureMessage: message,
  ...extra,
});

describe("imageView failure", () => {
  it("reads a build failure's exit code from the message and names the first layer without a result", () => {
    const view = imageView(image, failed("build", "RUN exit 7 failed (exit code 7)"), own, cache);
    expect(view.status).toBe("failed");
    expect(view.failure).toEqual({
      reason: "build",
      message: "RUN exit 7 failed (exit code 7)",
      exitCode: 7,
      layerKey: KEYS[2],
      layerIndex: 2,
      logTail: [],
    });
  });

  it("has no exit code when the message carries none, and only a build failure's suffix counts", () => {
    expect(imageView(image, failed("build", "the step was killed"), own, cache).failure).toMatchObject({
      exitCode: null,
      layerKey: KEYS[2],
      layerIndex: 2,
    });
    // An infra failure's exit code is the runner's own (a push, say), not a step's; it names no layer.
    const infra = imageView(image, failed("infra", "push failed (exit code 125) (gave up after 3 attempts)"), own, cache).failure;
    expect(infra).toMatchObject({ reason: "infra", exitCode: null, layerKey: null, layerIndex: null, logTail: [] });
    // Only the suffix the Build object appends is read, not a number elsewhere in the text.
    expect(imageView(image, failed("build", "(exit code 3) was printed, then killed"), own, cache).failure!.exitCode).toBeNull();
  });

  it("names no layer for a cancel or a timeout", () => {
    const cancelled = imageView(
      image,
      { status: "cancelled", failureReason: "cancelled", failureMessage: "Cancelled on request." },
      own,
      cache,
    );
    expect(cancelled).toMatchObject({
      status: "cancelled",
      failure: { reason: "cancelled", exitCode: null, layerKey: null, layerIndex: null, logTail: [] },
    });
    const timeout = imageView(
      image,
      { status: "timeout", failureReason: "timeout", failureMessage: "The build passed its deadline." },
      own,
      cache,
    );
    expect(timeout.failure).toMatchObject({ reason: "timeout", layerKey: null, layerIndex: null });
  });

  it("prefers stored details over derived ones and keeps the last lines of the tail", () => {
    const tail = Array.from({ length: 45 }, (_, i) => `line ${i}`);
    const view = imageView(
      image,
      failed("build", "step failed (exit code 2)", { failureExitCode: 3, failureLayerKey: KEYS[1], failureLogTail: tail }),
      new Map(),
      cache,
    );
    expect(view.failure).toMatchObject({ exitCode: 3, layerKey: KEYS[1], layerIndex: 1 });
    expect(view.failure!.logTail).toHaveLength(FAILURE_LOG_TAIL_LINES);
    expect(view.failure!.logTail.at(0)).toBe(`line ${45 - FAILURE_LOG_TAIL_LINES}`);
    expect(view.failure!.logTail.at(-1)).toBe("line 44");
  });

  it("names the cached layer that went missing", () => {
    const view = imageView({ ...image, buildId: null }, null, new Map(), cache);
    expect(view.failure).toMatchObject({ reason: "infra", exitCode: null, layerKey: KEYS[1], layerIndex: 1, logTail: [] });
  });

  it("shows no failure while building or once built", () => {
    expect(imageView(image, { status: "running", failureReason: null, failureMessage: null }, own, cache).failure).toBeNull();
    expect(
      imageView(
        image,
        { status: "succeeded", failureReason: null, failureMessage: null },
        new Map([...own, [KEYS[2]!, result(KEYS[2]!)]]),
        cache,
      ).failure,
    ).toBeNull();
  });
});

describe("GET /v1/images/:id after a failed step", () => {
  it("shows the exit code, the layer the runner stopped at and its log tail", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const submitted = await submitImage(t.token, chain(3));
    expect(submitted.status).toBe(202);
    await settle(submitted.body.buildId);
    const job = await nthJob(fleet, 1);
    const [first, second] = job.layers as [(typeof job.layers)[0], (typeof job.layers)[0]];
    for (const e of [{ type: "accepted" }, { type: "started" }] as const) expect((await sendEvent(fleet, job, e)).status).toBe(200);
    await registerLayerImage(job, first, digestFor(first.key));
    const built = await sendEvent(fleet, job, {
      type: "layer_succeeded",
      layerKey: first.key,
      digest: digestFor(first.key),
      sizeBytes: 10,
      reference: first.target,
    });
    expect(built.status).toBe(200);
    const logTail = ["+ echo last words", "last words", "+ exit 7"];
    const failure = await sendEvent(fleet, job, {
      type: "failed",
      reason: "build",
      message: "RUN exit 7 failed",
      layerKey: second.key,
      exitCode: 7,
      logTail,
    });
    expect(failure.status).toBe(200);

    const view = await apiJson("GET", `/v1/images/${submitted.body.id}`, { token: t.token });
    expect(view.status).toBe(200);
    expect(view.body.status).toBe("failed");
    expect(view.body.failure).toEqual({
      reason: "build",
      message: "RUN exit 7 failed (exit code 7)",
      exitCode: 7,
      layerKey: second.key,
      layerIndex: second.index,
      logTail,
    });
    expect(view.body.layers.map((l: { status: string }) => l.status)).toEqual(["succeeded", "failed", "failed"]);
  });

  it("keeps the last 20 lines of the tail, each cut to 2,000 characters", async () => {
    const { t, fleet, submitted, job } = await dispatchedBuild(1);
    const logTail = Array.from({ length: 30 }, (_, i) => `line ${i}`);
    logTail[29] = "x".repeat(4096);
    const failure = await sendEvent(fleet, job, {
      type: "failed",
      reason: "build",
      message: "RUN failed",
      layerKey: null,
      exitCode: 1,
      logTail,
    });
    expect(failure.status).toBe(200);

    const view = await apiJson("GET", `/v1/images/${submitted.body.id}`, { token: t.token });
    const tail = view.body.failure.logTail as string[];
    expect(tail).toHaveLength(FAILURE_LOG_TAIL_LINES);
    expect(tail[0]).toBe("line 10");
    expect(tail.at(-1)).toBe(`${"x".repeat(1999)}…`);
    // The runner named no layer: the first the build had not finished.
    expect(view.body.failure).toMatchObject({ exitCode: 1, layerKey: job.layers[0]!.key, layerIndex: 0 });
  });
});
