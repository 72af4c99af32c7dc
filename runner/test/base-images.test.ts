// Which images a layer's build pulls: FROM expanded with the ARGs declared before it (their
// defaults, `${VAR:-default}` and friends, overridden by the layer's build args, undeclared
// build args ignored as buildah and BuildKit do), stage names and scratch skipped, `COPY
// --from` / `RUN --mount=from=` images included, unused stages left out; and the TLS decision
// buildah's single --tls-verify flag allows.
import { describe, expect, it } from "vitest";
import { pulledImages, pullTls } from "../src/base-images.ts";

const HTTP = "127.0.0.1:5000";

describe("pulledImages", () => {
  it("expands ARG defaults declared before the first FROM", () => {
    expect(pulledImages([`ARG BASE=${HTTP}/busybox:1`, "FROM $BASE", "RUN true"])).toEqual({
      base: `${HTTP}/busybox:1`,
      images: [`${HTTP}/busybox:1`],
    });
    expect(pulledImages([`ARG HOST=${HTTP}`, "ARG TAG=1", "ARG BASE=${HOST}/busybox:$TAG", "FROM ${BASE}"]).base).toBe(`${HTTP}/busybox:1`);
  });

  it("lets the layer's build args override declared ARGs, and only declared ones", () => {
    const lines = [`ARG BASE=${HTTP}/busybox:1`, "FROM ${BASE}"];
    expect(pulledImages(lines, { buildArgs: { BASE: "ghcr.io/org/img:2" } }).base).toBe("ghcr.io/org/img:2");
    expect(pulledImages(["ARG BASE", "FROM $BASE"], { buildArgs: { BASE: `${HTTP}/x:1` } }).base).toBe(`${HTTP}/x:1`);
    // An ARG declared without a default and given no value expands to nothing; an undeclared build arg does not reach FROM.
    expect(pulledImages(["ARG REG", "FROM ${REG:-docker.io}/library/busybox"]).base).toBe("docker.io/library/busybox");
    expect(pulledImages(["FROM ${REG:-docker.io}/library/busybox"], { buildArgs: { REG: HTTP } }).base).toBe("docker.io/library/busybox");
  });

  it("supports the shell forms of the Dockerfile lexer", () => {
    expect(pulledImages(["ARG REG", `FROM \${REG:-${HTTP}}/busybox`]).base).toBe(`${HTTP}/busybox`);
    expect(pulledImages([`ARG REG=${HTTP}`, "FROM ${REG:+mirror.example}/busybox"]).base).toBe("mirror.example/busybox");
    expect(pulledImages(["ARG REG=", `FROM \${REG:-${HTTP}}/busybox`]).base).toBe(`${HTTP}/busybox`);
    expect(pulledImages(["ARG REG=", `FROM \${REG-${HTTP}}/busybox`]).base).toBe("/busybox");
    expect(pulledImages(["ARG V=1.36.1", "FROM busybox:${V%.*}"]).base).toBe("busybox:1.36");
    expect(pulledImages([`ARG BASE='${HTTP}/busybox:1'`, "FROM $BASE"]).base).toBe(`${HTTP}/busybox:1`);
  });

  it("skips stage names and scratch, and keeps every image the last stage needs", () => {
    const lines = [
      `ARG BUILDER=${HTTP}/golang:1`,
      "FROM $BUILDER AS build",
      "RUN make",
      "FROM build AS test",
      "RUN make test",
      "FROM scratch",
      "COPY --from=build /out /",
      "COPY --from=ghcr.io/org/tools:3 /bin/tool /bin/",
      "RUN --mount=from=quay.io/org/certs:1,target=/certs true",
    ];
    expect(pulledImages(lines)).toEqual({
      base: `${HTTP}/golang:1`,
      images: [`${HTTP}/golang:1`, "ghcr.io/org/tools:3", "quay.io/org/certs:1"],
    });
  });

  it("leaves out stages the last stage does not need (buildah skips them)", () => {
    const lines = ["FROM docker.io/library/debian:12 AS unused", "RUN true", `FROM ${HTTP}/busybox:1 AS app`, "FROM app", "RUN true"];
    expect(pulledImages(lines)).toEqual({ base: "docker.io/library/debian:12", images: [`${HTTP}/busybox:1`] });
  });

  it("points a leading FROM base at the parent image", () => {
    expect(pulledImages(["FROM base", "RUN true"], { parentReference: `${HTTP}/ws/layers:abc` })).toEqual({
      base: `${HTTP}/ws/layers:abc`,
      images: [`${HTTP}/ws/layers:abc`],
    });
    expect(
      pulledImages(["FROM base", "COPY --from=python:3.12 /usr/local /usr/local"], { parentReference: `${HTTP}/ws/layers:abc` }).images,
    ).toEqual([`${HTTP}/ws/layers:abc`, "python:3.12"]);
  });

  it("finds nothing to pull in FROM scratch, and falls back to the literal FROM for lines the frontend rejects", () => {
    expect(pulledImages(["FROM scratch", "COPY . /"])).toEqual({ base: null, images: [] });
    // An unterminated ${ is a syntax error: the build reports it; until then the literal line is all there is.
    expect(pulledImages(["FROM ghcr.io/org/img:${TAG", "RUN true"])).toEqual({
      base: "ghcr.io/org/img:${TAG",
      images: ["ghcr.io/org/img:${TAG"],
    });
  });
});

describe("pullTls", () => {
  it("turns verification off only when every registry pulled from is insecure", () => {
    expect(pullTls([HTTP], [HTTP])).toEqual({ verify: false, verifiedInsecure: [] });
    expect(pullTls([HTTP, HTTP, "10.0.0.2:5000"], [HTTP, "10.0.0.2:5000"])).toEqual({ verify: false, verifiedInsecure: [] });
    expect(pullTls(["docker.io"], [HTTP])).toEqual({ verify: true, verifiedInsecure: [] });
  });

  it("keeps verification on for a mix, naming the insecure registries that will be verified anyway", () => {
    expect(pullTls([HTTP, "docker.io"], [HTTP])).toEqual({ verify: true, verifiedInsecure: [HTTP] });
  });

  it("verifies when nothing is pulled", () => {
    expect(pullTls([], [HTTP])).toEqual({ verify: true, verifiedInsecure: [] });
  });
});
