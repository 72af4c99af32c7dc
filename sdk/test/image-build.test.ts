// image.build() against a scripted server (the client's injectable fetch): the submission's
// requiredSecretKeys, checks that need no server, what a 422 about a secret says, and how the
// image's failure becomes an ImageBuildError, from new servers' fields and old servers' messages;
// how build() waits for a running build: following its log, or with `logs: false` long-polling the build.

import { computeChainKeys, type ImageStatus } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { KilnClient } from "../src/client.ts";
import { BadRequestError, ImageBuildError, InvalidError } from "../src/errors.ts";
import { Image } from "../src/image.ts";
import { exitCodeOf, type ImageView } from "../src/image-build.ts";
import { Secret } from "../src/secret.ts";

type Call = { method: string; path: string; query: Record<string, string>; body: any };
type Answer = { status?: number; body: unknown };

/** A client whose server answers each route with `answer(call)`, recording every call. */
function scripted(answer: (call: Call) => Answer | Promise<Answer>) {
  const calls: Call[] = [];
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    const url = new URL(String(input));
    const call = {
      method: init?.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
    };
    calls.push(call);
    const { status = 200, body } = await answer(call);
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "x-request-id": "req-7" } });
  }) as typeof globalThis.fetch;
  return { client: new KilnClient({ serverUrl: "http://kiln.test", token: "kiln_api_t", fetch, maxRetries: 0 }), calls };
}

/**
 * A server on which every image is built at once (or fails with `failure`); with `buildStatuses`,
 * the submission names a running build `bd-1` whose reads answer those statuses in turn (the last
 * one repeated) and whose log is empty and done.
 */
function server(
  options: { failure?: ImageView["failure"]; layerStatus?: (i: number) => string; submit?: Answer; buildStatuses?: string[] } = {},
) {
  let keys: string[] = [];
  let buildReads = 0;
  return scripted(async (call) => {
    if (call.method === "PUT" && call.path.startsWith("/v1/secrets/"))
      return { body: { name: call.path.split("/").at(-1), keys: Object.keys(call.body.values) } };
    if (call.method === "POST" && call.path === "/v1/images") {
      if (options.submit) return options.submit;
      keys = await computeChainKeys({ builderVersion: call.body.builderVersion, layers: call.body.layers });
      return { status: 202, body: { id: "im-1", status: "building", buildId: options.buildStatuses ? "bd-1" : null, layers: [] } };
    }
    if (options.buildStatuses && call.method === "GET" && call.path === "/v1/builds/bd-1") {
      const statuses = options.buildStatuses;
      return { body: { id: "bd-1", status: statuses[Math.min(buildReads++, statuses.length - 1)] } };
    }
    if (options.buildStatuses && call.method === "GET" && call.path === "/v1/builds/bd-1/logs") {
      return { body: { buildId: "bd-1", status: "succeeded", chunks: [], cursor: Number(call.query.cursor ?? 0), done: true } };
    }
    if (call.method === "GET" && call.path === "/v1/images/im-1") {
      const view: ImageView = {
        id: "im-1",
        status: options.failure ? "failed" : "succeeded",
        buildId: options.failure ? "bd-1" : null,
        failure: options.failure ?? null,
        layers: keys.map((key, index) => ({
          index,
          key,
          status: (options.layerStatus?.(index) ?? "succeeded") as ImageStatus,
          cached: false,
          digest: null,
          reference: null,
          sizeBytes: null,
          buildId: null,
        })),
        mode: "normal",
        runtimeMounts: [],
        createdAt: new Date(0).toISOString(),
      };
      return { body: view };
    }
    return { status: 404, body: { error: { code: "not_found", message: `no route ${call.method} ${call.path}` } } };
  });
}

const submission = (calls: Call[]) => calls.find((c) => c.method === "POST" && c.path === "/v1/images")!.body;

describe("build() sends requiredSecretKeys", () => {
  it("merges every named secret's required keys over all layers and registry logins, sorted", async () => {
    const { client, calls } = server();
    const image = Image.fromRegistry("registry.example.com/base:1", {
      secret: Secret.fromName("registry", { requiredKeys: ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"] }),
    })
      .runCommands("make", { secrets: [Secret.fromName("db", { requiredKeys: ["USER"] }), Secret.fromName("plain")] })
      .runCommands("make test", { secrets: [Secret.fromName("db", { requiredKeys: ["PASSWORD", "USER"] })] });
    await image.build({ client, logs: false });
    expect(submission(calls).requiredSecretKeys).toEqual({
      db: ["PASSWORD", "USER"],
      registry: ["REGISTRY_PASSWORD", "REGISTRY_USERNAME"],
    });
    expect(Object.keys(submission(calls).requiredSecretKeys)).toEqual(["db", "registry"]);
    expect((await image.describe()).requiredSecretKeys).toEqual(submission(calls).requiredSecretKeys);
  });

  it("omits the field when no secret requires keys, and stores inline secrets (registry logins too) instead", async () => {
    const { client, calls } = server();
    const login = Secret.fromDict({ REGISTRY_USERNAME: "u", REGISTRY_PASSWORD: "p" });
    const step = Secret.fromDict({ TOKEN: "t" });
    await Image.fromRegistry("registry.example.com/base:1", { secret: login })
      .runCommands("make", { secrets: [step, Secret.fromName("plain")] })
      .build({ client, logs: false });
    expect(submission(calls)).not.toHaveProperty("requiredSecretKeys");
    const stored = calls.filter((c) => c.method === "PUT").map((c) => c.path);
    expect(stored.sort()).toEqual([`/v1/secrets/${login.ref}`, `/v1/secrets/${step.ref}`].sort());
    // Stored before the submission, so the server finds them with their keys.
    expect(calls.findIndex((c) => c.path === "/v1/images")).toBeGreaterThan(calls.findIndex((c) => c.method === "PUT"));
  });

  it("refuses more required keys than the server accepts before any request", async () => {
    const { client, calls } = server();
    const keys = (prefix: string) => Array.from({ length: 200 }, (_, i) => `${prefix}_${i}`);
    const image = Image.fromRegistry("busybox")
      .runCommands("a", { secrets: [Secret.fromName("big", { requiredKeys: keys("A") }), Secret.fromDict({ X: "1" })] })
      .runCommands("b", { secrets: [Secret.fromName("big", { requiredKeys: keys("B") })] });
    await expect(image.build({ client, logs: false })).rejects.toThrow(InvalidError);
    await expect(image.build({ client, logs: false })).rejects.toThrow(
      "Secret 'big' has 400 required keys across the image; the server accepts at most 256",
    );
    expect(calls).toEqual([]);
    expect(() => Secret.fromName("one", { requiredKeys: [...keys("A"), ...keys("B")] })).toThrow(InvalidError);
    expect(Secret.fromName("dup", { requiredKeys: ["K", "K"] }).requiredKeys).toEqual(["K"]);
  });
});

describe("build() explains a 422 about a secret", () => {
  const image = () =>
    Image.fromRegistry("busybox")
      .runCommands("migrate", { secrets: [Secret.fromName("db", { requiredKeys: ["USER", "PASSWORD"] })] })
      .runCommands("seed", { secrets: [Secret.fromName("db")] });

  it("names the secret, the missing keys, the layers that use it and the command that fixes it", async () => {
    const { client } = server({
      submit: {
        status: 422,
        body: {
          error: {
            code: "secret_missing_keys",
            message: "Secret 'db' lacks required keys: PASSWORD. Add them with PUT /v1/secrets/db.",
            details: { secret: "db", missingKeys: ["PASSWORD"] },
          },
        },
      },
    });
    const error = await image()
      .build({ client, logs: false })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({
      status: 422,
      code: "secret_missing_keys",
      requestId: "req-7",
      details: { secret: "db", missingKeys: ["PASSWORD"] },
    });
    const { message, cause } = error as BadRequestError;
    expect(message).toContain("Secret 'db' (used by layers 2, 3 of 3) lacks required keys: PASSWORD.");
    expect(message).toContain("kiln secret create db PASSWORD=... USER=...");
    expect(message).toContain("Secret.fromName('db', { requiredKeys })");
    expect(message).toContain("(HTTP 422 secret_missing_keys, request id req-7)");
    expect(cause).toBeInstanceOf(BadRequestError);
  });

  it("says how to create a secret that does not exist", async () => {
    const { client } = server({
      submit: {
        status: 422,
        body: { error: { code: "secret_not_found", message: "Secret 'db' does not exist in this workspace.", details: { secret: "db" } } },
      },
    });
    const error = (await image()
      .build({ client, logs: false })
      .catch((e: unknown) => e)) as BadRequestError;
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain(
      "Secret 'db' (used by layers 2, 3 of 3) does not exist in this workspace. Create it: kiln secret create db PASSWORD=... USER=...",
    );
  });

  it("passes other refusals through unchanged", async () => {
    const { client } = server({
      submit: { status: 422, body: { error: { code: "context_not_found", message: "Build context sha256:x has not been uploaded." } } },
    });
    const error = (await image()
      .build({ client, logs: false })
      .catch((e: unknown) => e)) as BadRequestError;
    expect(error.message).toBe("Build context sha256:x has not been uploaded. (HTTP 422 context_not_found, request id req-7)");
  });
});

describe("build() failures become ImageBuildError", () => {
  const image = () => Image.fromRegistry("busybox").runCommands("echo one").runCommands("echo last words; exit 7");
  const build = async (options: Parameters<typeof server>[0]) => {
    const { client } = server(options);
    const error = await image()
      .build({ client, logs: false })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageBuildError);
    return error as ImageBuildError;
  };

  it("uses the server's exit code, layer and log tail", async () => {
    const { layers } = await image().describe();
    const error = await build({
      failure: {
        reason: "build",
        message: "RUN failed (exit code 7)",
        exitCode: 7,
        layerKey: layers[2]!.key,
        layerIndex: 2,
        logTail: ["last words"],
      },
      layerStatus: (i) => (i === 0 ? "succeeded" : "failed"),
    });
    expect(error).toMatchObject({
      imageId: "im-1",
      buildId: "bd-1",
      reason: "build",
      exitCode: 7,
      layerIndex: 2,
      layerKey: layers[2]!.key,
      logTail: ["last words"],
    });
    // The exit code is said once, next to the layer.
    expect(error.message).toBe(
      "Image build for im-1 failed at layer 3 (exit code 7): build: RUN failed\n\nLast lines of output:\n  last words\n\nSee the full log: kiln logs bd-1",
    );
  });

  it("falls back to the server's layerIndex when the key is unknown here", async () => {
    const error = await build({
      failure: { reason: "build", message: "RUN failed", exitCode: 1, layerKey: "k-other", layerIndex: 1, logTail: [] },
    });
    expect(error).toMatchObject({ layerIndex: 1, exitCode: 1 });
  });

  it("names no layer and no exit code when a newer server says there is none", async () => {
    const error = await build({
      failure: { reason: "cancelled", message: "Cancelled on request.", exitCode: null, layerKey: null, layerIndex: null, logTail: [] },
      layerStatus: () => "cancelled",
    });
    expect(error).toMatchObject({ reason: "cancelled", layerIndex: undefined, layerKey: undefined, exitCode: undefined });
    expect(error.message).toContain("failed: cancelled: Cancelled on request.");
  });

  it("reads an older server's message and layer statuses", async () => {
    const { layers } = await image().describe();
    const error = await build({
      failure: { reason: "build", message: "RUN failed (exit code 7)" },
      layerStatus: (i) => (i < 2 ? "succeeded" : "failed"),
    });
    expect(error).toMatchObject({ exitCode: 7, layerIndex: 2, layerKey: layers[2]!.key, logTail: [] });
    expect(error.message).toContain("failed at layer 3 (exit code 7): build: RUN failed\n");
  });
});

describe("build() waits for a running build", () => {
  const image = () => Image.fromRegistry("busybox").runCommands("make");

  it("with logs off, long-polls the build (waitSeconds=20) until it is final instead of reading the log", async () => {
    const { client, calls } = server({ buildStatuses: ["running", "running", "succeeded"] });
    const built = await image().build({ client, logs: false });
    expect(calls.some((c) => c.path === "/v1/builds/bd-1/logs")).toBe(false);
    const polls = calls.filter((c) => c.path === "/v1/builds/bd-1");
    expect(polls.map((c) => [c.method, c.query])).toEqual(Array.from({ length: 3 }, () => ["GET", { waitSeconds: "20" }]));
    // The image view is read once the build is final, and gives the built image.
    expect(calls.findIndex((c) => c.path === "/v1/images/im-1")).toBeGreaterThan(calls.lastIndexOf(polls.at(-1)!));
    expect(built.imageId).toBe("im-1");
  });

  it("with logs on (the default), follows the log and does not long-poll the build", async () => {
    const { client, calls } = server({ buildStatuses: ["running"] });
    const built = await image().build({ client });
    expect(calls.filter((c) => c.path === "/v1/builds/bd-1/logs").map((c) => c.query)).toEqual([{ cursor: "0", waitSeconds: "20" }]);
    expect(calls.some((c) => c.path === "/v1/builds/bd-1")).toBe(false);
    expect(built.imageId).toBe("im-1");
  });
});

describe("exitCodeOf", () => {
  it("trusts the field when present, null included, and parses only older servers' build messages", () => {
    expect(exitCodeOf({ reason: "build", message: "x (exit code 7)", exitCode: 3 })).toBe(3);
    expect(exitCodeOf({ reason: "build", message: "x (exit code 7)", exitCode: null })).toBeUndefined();
    expect(exitCodeOf({ reason: "build", message: "RUN exit 7 failed (exit code 7)" })).toBe(7);
    expect(exitCodeOf({ reason: "infra", message: "push failed (exit code 125)" })).toBeUndefined();
    expect(exitCodeOf({ reason: "build", message: "no code here" })).toBeUndefined();
  });
});
