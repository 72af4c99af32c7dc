// The dispatched job, pure: references, context URLs, only the declared secrets, schema-valid.

import { JobSchema } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { composeJob, declaredSecrets, pinnedReference, targetReference } from "../../durable-objects/job.ts";
import { layer } from "./helpers.ts";

const key = (c: string) => c.repeat(64);
const digest = `sha256:${"c".repeat(64)}`;

describe("job composition", () => {
  it("targets <registry host>/<workspace>/layers:<key>, a private tag for ignore-cache builds", () => {
    expect(targetReference("https://kiln.example.com", "acme", key("a"), "normal", "bd-1")).toBe(
      `kiln.example.com/acme/layers:${key("a")}`,
    );
    expect(targetReference("http://127.0.0.1:8787", "acme", key("a"), "ignore", "bd-1")).toBe(
      `127.0.0.1:8787/acme/layers:${key("a")}-bd-1`,
    );
  });

  it("pins references to digests", () => {
    expect(pinnedReference("127.0.0.1:8787/acme/layers:abc", "sha256:dd")).toBe("127.0.0.1:8787/acme/layers@sha256:dd");
    expect(pinnedReference("host/acme/layers@sha256:old", "sha256:dd")).toBe("host/acme/layers@sha256:dd");
    expect(pinnedReference("host:5000/acme/layers", "sha256:dd")).toBe("host:5000/acme/layers@sha256:dd");
  });

  it("collects the declared secrets, registry secrets included", () => {
    const layers = [
      { index: 0, key: key("a"), spec: layer(["RUN a"], { registryAuth: { kind: "static", secret: "regcred" } }, true) },
      { index: 1, key: key("b"), spec: layer(["RUN b"], { secrets: ["db", "api"] }) },
    ];
    expect(declaredSecrets(layers)).toEqual(["api", "db", "regcred"]);
  });

  it("builds a schema-valid job with context URLs, credentials and the callback", () => {
    const job = composeJob({
      buildId: "bd-1",
      workspaceId: "ws-1",
      workspaceName: "acme",
      origin: "http://127.0.0.1:8787",
      mode: "normal",
      builderVersion: "2025.06",
      attemptId: "at-1",
      fencingToken: 2,
      parentReference: "127.0.0.1:8787/acme/layers@sha256:pp",
      layers: [{ index: 3, key: key("a"), spec: layer(["COPY . /app"], { context: { digest, sizeBytes: 10 }, secrets: ["db"] }) }],
      secrets: { db: { PASSWORD: "x" } },
      token: "kjt_secret",
      deadlineMs: 1_900_000_000_000,
    });
    expect(JobSchema.safeParse(job).success).toBe(true);
    expect(job.layers[0]).toMatchObject({
      index: 3,
      target: `127.0.0.1:8787/acme/layers:${key("a")}`,
      context: { digest, sizeBytes: 10, url: `http://127.0.0.1:8787/v1/runner/contexts/${digest}` },
    });
    expect(job.registry).toEqual({ host: "127.0.0.1:8787", credentials: { username: "kiln-job", password: "kjt_secret" }, insecure: true });
    expect(job.callback).toEqual({ eventsUrl: "http://127.0.0.1:8787/v1/runner/events", downloadToken: "kjt_secret" });
    expect(job.fencingToken).toBe(2);
  });
});
