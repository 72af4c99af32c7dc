// The pre-pull of a root layer's base images (base-prepull.ts): which images are pulled ahead
// and how (pure), the build's pull policy after it, and the pulls as processes: the auth file
// there only while they run, a failure logged and left to the build, a stop killing them.
// The pull command here is a shell script standing in for buildah (real pulls: build-prepull.test.ts).
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Job, JobLayer } from "@kiln-build/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BuildBackend, PullRequest } from "../src/backends/types.ts";
import { buildPullPolicy, type PrepullEnv, prepullPlan, startBasePrepull } from "../src/base-prepull.ts";

const HOST = "registry.kiln.test:5000";

function layer(index: number, commands: string[], extra: Partial<JobLayer> = {}): JobLayer {
  return {
    key: String(index).repeat(64),
    index,
    dockerfileCommands: commands,
    context: null,
    secrets: [],
    gpu: null,
    buildArgs: {},
    buildFunction: null,
    pythonStandalone: null,
    baseAuth: null,
    target: `${HOST}/ws/layers:${index}`,
    ...extra,
  };
}

function job(layers: JobLayer[], parentReference: string | null = null): Job {
  return {
    protocolVersion: 2,
    jobId: "job_1",
    attemptId: "att_1",
    fencingToken: 1,
    workspaceId: "ws_1",
    builderVersion: "2025.06",
    parentReference,
    layers,
    secrets: {},
    registry: { host: HOST, credentials: { username: "kiln", password: "target-password-0123" }, insecure: true },
    callback: { eventsUrl: "http://127.0.0.1:1/v1/runner/events", downloadToken: "dl" },
    deadlineMs: Date.now() + 60_000,
  } as Job;
}

describe("prepullPlan", () => {
  it("pulls every registry image a root layer's build pulls, as the build would", () => {
    const root = layer(0, ["ARG BASE=debian:12", "FROM ${BASE} AS tools", "RUN make", "FROM scratch", "COPY --from=tools /x /x"], {
      platform: "linux/arm64",
    });
    expect(prepullPlan(job([root]), 0, "always", [])).toEqual({
      images: ["debian:12"],
      policy: "always",
      tlsVerify: true,
      platform: "linux/arm64",
      complete: true,
    });
    // Stage names and `scratch` pull nothing; an image named by COPY --from is pulled too.
    const copies = layer(0, [`FROM ${HOST}/base/busybox:1 AS a`, "FROM a", `COPY --from=${HOST}/tools:2 /t /t`]);
    expect(prepullPlan(job([copies]), 0, "missing", [HOST])).toMatchObject({
      images: [`${HOST}/base/busybox:1`, `${HOST}/tools:2`],
      tlsVerify: false,
      complete: true,
    });
  });

  it("pulls nothing ahead for policy never, a layer with a parent, FROM scratch or FROM --platform", () => {
    const root = layer(0, ["FROM busybox", "RUN true"]);
    expect(prepullPlan(job([root]), 0, "never", [])).toBeNull();
    expect(prepullPlan(job([root], `${HOST}/ws/layers:parent`), 0, "missing", [])).toBeNull();
    expect(prepullPlan(job([root, layer(1, ["FROM base", "RUN true"])]), 1, "missing", [])).toBeNull();
    expect(prepullPlan(job([layer(0, ["FROM scratch", "COPY a /a"])]), 0, "missing", [])).toBeNull();
    expect(prepullPlan(job([layer(0, ["FROM base", "RUN true"])]), 0, "missing", [])).toBeNull();
    expect(prepullPlan(job([layer(0, ["FROM --platform=$BUILDPLATFORM golang AS b", "FROM busybox"])]), 0, "always", [])).toBeNull();
  });

  it("leaves an image an unset ARG names to the build, which then pulls with the configured policy", () => {
    expect(prepullPlan(job([layer(0, ["ARG BASE", "FROM $BASE"])]), 0, "always", [])).toBeNull();
    expect(prepullPlan(job([layer(0, ["FROM ${TAGGED}:1"])]), 0, "always", [])).toBeNull();
    const mixed = layer(0, ["FROM busybox AS a", "FROM ${MISSING}", "COPY --from=a /bin/sh /sh"]);
    expect(prepullPlan(job([mixed]), 0, "always", [])).toMatchObject({ images: ["busybox"], complete: false });
  });

  it("is incomplete, and as strict on TLS as a chain would be, when a later layer pulls another image", () => {
    const root = layer(0, [`FROM ${HOST}/base:1`]);
    const next = layer(1, ["FROM base", "COPY --from=docker.io/library/alpine:3 /etc/os-release /os"]);
    expect(prepullPlan(job([root, next]), 0, "always", [HOST])).toMatchObject({
      images: [`${HOST}/base:1`],
      tlsVerify: true,
      complete: false,
    });
    // A later layer that only builds FROM the one below pulls nothing else.
    expect(prepullPlan(job([root, layer(1, ["FROM base", "RUN true"])]), 0, "always", [HOST])).toMatchObject({
      tlsVerify: false,
      complete: true,
    });
  });
});

describe("buildPullPolicy", () => {
  it("waits for the pre-pull; after a complete one the build pulls only what is missing", async () => {
    let settle: (pulled: boolean) => void = () => {};
    const pending = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    let decided = false;
    const policy = buildPullPolicy("always", null, pending).then((p) => {
      decided = true;
      return p;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(decided).toBe(false);
    settle(true);
    expect(await policy).toBe("missing");
    expect(await buildPullPolicy("newer", null, Promise.resolve(false))).toBe("newer");
    expect(await buildPullPolicy("always", null)).toBe("always");
    expect(await buildPullPolicy("always", `${HOST}/ws/layers:0`)).toBe("missing");
  });
});

describe("startBasePrepull", () => {
  let dir: string;
  let requests: PullRequest[];
  let lines: string[];
  let spans: { kind: string; outcome?: string }[];
  let script: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kiln-prepull-"));
    requests = [];
    lines = [];
    spans = [];
    script = "exit 0";
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // A backend whose pull runs `script` with the auth file as $1 and the image as $2.
  const backend = (): BuildBackend =>
    ({
      name: "buildah",
      pull(request: PullRequest) {
        requests.push(request);
        return { argv: ["sh", "-c", script, "pull", request.authFile, request.image] };
      },
    }) as unknown as BuildBackend;

  function env(overrides: Partial<PrepullEnv> = {}): PrepullEnv {
    return {
      job: job([layer(0, [`FROM ${HOST}/base:1`, `COPY --from=${HOST}/tools:2 /t /t`], { baseAuth: { kind: "static", secret: "s" } })]),
      config: { pullBase: "missing", insecureRegistries: [] },
      backend: backend(),
      shipper: { system: (_key, line) => lines.push(line) },
      signal: new AbortController().signal,
      secretDir: dir,
      targetLogin: { host: HOST, username: "kiln", password: "target-password-0123" },
      baseLogins: new Map([[0, { host: "other.example", username: "u", password: "base-password-4567" }]]),
      janitor: { enter: async () => async () => {} },
      phases: {
        begin: (_key, kind) => {
          const span: { kind: string; outcome?: string } = { kind };
          spans.push(span);
          return (outcome) => {
            span.outcome = outcome;
          };
        },
      },
      ...overrides,
    };
  }

  it("pulls each image with the build's logins in a 0600 auth file, removed once the pulls end", async () => {
    // Each pull copies what it was given, to be read after the auth file is gone.
    script = 'out="$(dirname "$1")/.."; stat -c %a "$1" > "$out/mode-$(basename "$2")"; cp "$1" "$out/seen-$(basename "$2")"';
    const prepull = startBasePrepull(env(), 0)!;
    expect(spans).toEqual([{ kind: "pull" }]);
    expect(await prepull.settled).toBe(true);
    expect(requests.map((r) => [r.image, r.policy, r.tlsVerify])).toEqual([
      [`${HOST}/base:1`, "missing", false],
      [`${HOST}/tools:2`, "missing", false],
    ]);
    const seen = JSON.parse(await readFile(path.join(dir, "seen-base:1"), "utf8")) as { auths: Record<string, unknown> };
    expect(Object.keys(seen.auths).sort()).toEqual(["other.example", HOST]);
    // Nothing of the pre-pull is left in the secrets directory but what the script itself copied out.
    expect((await readFile(path.join(dir, "mode-tools:2"), "utf8")).trim()).toBe("600");
    expect((await readdir(dir)).sort()).toEqual(["mode-base:1", "mode-tools:2", "seen-base:1", "seen-tools:2"]);
    expect(existsSync(requests[0]!.authFile)).toBe(false);
    expect(spans).toEqual([{ kind: "pull", outcome: "ok" }]);
    expect(lines.join("\n")).toMatch(/^pulling .*base:1, .*tools:2 while the layer's inputs are prepared\npulled /);
  });

  it("logs a failed pull without its logins and reports the images not pulled", async () => {
    script = 'echo "Error: initializing source docker://$2: requested access to the resource is denied" >&2; exit 125';
    const prepull = startBasePrepull(env(), 0)!;
    expect(await prepull.settled).toBe(false);
    expect(spans).toEqual([{ kind: "pull", outcome: "failed" }]);
    expect(lines.filter((l) => l.startsWith("could not pull")).sort()).toEqual([
      `could not pull ${HOST}/base:1 ahead of the build (initializing source docker://${HOST}/base:1: requested access to the resource is denied); the build pulls it itself`,
      `could not pull ${HOST}/tools:2 ahead of the build (initializing source docker://${HOST}/tools:2: requested access to the resource is denied); the build pulls it itself`,
    ]);
    expect(lines.join("\n")).not.toMatch(/password/);
    expect(await readdir(dir)).toEqual([]);
  });

  it("kills the pulls when the job stops, and stop() ends them too", async () => {
    script = 'echo $$ > "$(dirname "$1")/../pid-$(basename "$2")"; exec sleep 60';
    const stopJob = new AbortController();
    const prepull = startBasePrepull(env({ signal: stopJob.signal }), 0)!;
    const pidFile = path.join(dir, "pid-base:1");
    while (!existsSync(pidFile) || (await stat(pidFile)).size === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const pid = Number(await readFile(pidFile, "utf8"));
    stopJob.abort();
    expect(await prepull.settled).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(spans).toEqual([{ kind: "pull", outcome: "stopped" }]);
    expect(lines.some((l) => l.startsWith("could not pull"))).toBe(false);

    await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(path.join(tmpdir(), "kiln-prepull-"));
    const stopped = startBasePrepull(env({ secretDir: dir }), 0)!;
    while (!existsSync(path.join(dir, "pid-base:1"))) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await stopped.stop()).toBe(false);
    expect((await readdir(dir)).filter((f) => f.startsWith("prepull-"))).toEqual([]);
  });

  it("starts nothing for a backend without a pull, or when nothing is pulled ahead", () => {
    const noPull = { name: "buildctl" } as unknown as BuildBackend;
    expect(startBasePrepull(env({ backend: noPull }), 0)).toBeNull();
    expect(startBasePrepull(env({ config: { pullBase: "never", insecureRegistries: [] } }), 0)).toBeNull();
    expect(spans).toEqual([]);
  });
});
