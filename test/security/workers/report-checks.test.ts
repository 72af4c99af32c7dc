// The pure readings behind the runner-trust checks: which image a failed pull names (the
// reference runner's words, buildah's and BuildKit's, as they print them), whether a manifest's
// layers extend its parent's, and which layers must extend their parent at all.
import { describe, expect, it } from "vitest";
import { missingImage } from "../../../durable-objects/pull-failure.ts";
import { buildsOnParent, extendsLayers, manifestLayers, repositoryOf } from "../../../durable-objects/report-checks.ts";

const DIGEST = `sha256:${"4a".repeat(32)}`;

describe("missingImage", () => {
  it("reads the reference runner's report of a pull the registry answered 404", () => {
    const message = `could not pull 127.0.0.1:8787/ws/layers@${DIGEST}: the registry has no such image, or does not show it to this job's credentials (manifest unknown: manifest unknown to registry)`;
    expect(missingImage(message, [])).toEqual({ reference: `127.0.0.1:8787/ws/layers@${DIGEST}`, answer: "manifest unknown" });
  });

  it("reads buildah 1.28's error line by tag and by digest, from the message or the log tail", () => {
    const byTag =
      "Error: creating build container: initializing source docker://127.0.0.1:33301/ws/busybox:no-such-tag: reading manifest no-such-tag in 127.0.0.1:33301/ws/busybox: manifest unknown: manifest unknown to registry";
    expect(missingImage(`buildah build exited with 125: ${byTag}`, [])).toEqual({
      reference: "127.0.0.1:33301/ws/busybox:no-such-tag",
      answer: "manifest unknown",
    });
    const byDigest = `Error: creating build container: initializing source docker://kiln.test/ws/layers@${DIGEST}: reading manifest ${DIGEST} in kiln.test/ws/layers: manifest unknown`;
    expect(missingImage("buildah build exited with 125", ["STEP 1/2: FROM x", byDigest, ""])).toEqual({
      reference: `kiln.test/ws/layers@${DIGEST}`,
      answer: "manifest unknown",
    });
    const docker =
      "Error: error creating build container: Error reading manifest 9.9 in docker.io/library/busybox: name unknown: repository not found";
    expect(missingImage(docker, [])).toEqual({ reference: "docker.io/library/busybox:9.9", answer: "name unknown" });
  });

  it("reads BuildKit's, and nothing else: refused credentials, transport errors and failed steps are not a missing image", () => {
    expect(
      missingImage(
        "error: failed to solve: failed to resolve source metadata for docker.io/library/nope:1: docker.io/library/nope:1: not found",
        [],
      ),
    ).toEqual({ reference: "docker.io/library/nope:1", answer: "not found" });
    for (const other of [
      "could not pull r.example/a:1: the registry refused this job's credentials (denied: requested access to the resource is denied)",
      "Error: creating build container: initializing source docker://r.example/a:1: pinging container registry r.example: connection refused",
      'Error: building at STEP "RUN cat /nope": while running runtime: exit status 1',
      "cat: can't open '/nope': No such file or directory (not found)",
    ]) {
      expect(missingImage(other, [other]), other).toBeNull();
    }
  });
});

describe("manifest layers", () => {
  const manifest = (layers: string[]) =>
    new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, config: { digest: "c" }, layers: layers.map((digest) => ({ digest })) }));

  it("reads the layer list of an image manifest; an index or junk is not an image", () => {
    expect(manifestLayers(manifest(["a", "b"]))).toEqual(["a", "b"]);
    expect(manifestLayers(new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, manifests: [] })))).toBe("index");
    expect(manifestLayers(new TextEncoder().encode("{not json"))).toBeNull();
    expect(manifestLayers(new TextEncoder().encode(JSON.stringify({ layers: [{ size: 1 }] })))).toBeNull();
  });

  it("extends a parent when the parent's layers come first, in order (adding none counts)", () => {
    expect(extendsLayers(["a", "b"], ["a", "b", "c"])).toBe(true);
    expect(extendsLayers(["a", "b"], ["a", "b"])).toBe(true);
    expect(extendsLayers([], ["x"])).toBe(true);
    expect(extendsLayers(["a", "b"], ["b", "a", "c"])).toBe(false);
    expect(extendsLayers(["a", "b"], ["a"])).toBe(false);
    expect(extendsLayers(["a"], ["x", "a"])).toBe(false);
  });

  it("holds a layer to its parent only when its last stage descends from FROM base", () => {
    expect(buildsOnParent(["FROM base", "RUN echo hi"])).toBe(true);
    expect(buildsOnParent(["FROM base AS b", "RUN x", "FROM golang:1 AS build", "RUN y", "FROM b", "COPY --from=build /o /o"])).toBe(true);
    expect(buildsOnParent(["FROM base", "RUN x", "FROM busybox:1", "COPY --from=0 /o /o"])).toBe(false);
    expect(buildsOnParent(["FROM base", "FROM scratch"])).toBe(false);
  });

  it("splits references into repository and pinned digest", () => {
    expect(repositoryOf(`kiln.test/ws/layers@${DIGEST}`)).toEqual({ repository: "ws/layers", digest: DIGEST });
    expect(repositoryOf("127.0.0.1:8787/ws/layers:abc")).toEqual({ repository: "ws/layers", digest: null });
  });
});
