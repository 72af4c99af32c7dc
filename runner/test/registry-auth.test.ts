// Registry logins: reference parsing, the auth file both tool families read, static and
// Google `_json_key` logins, and AWS ECR through a SigV4-signed GetAuthorizationToken
// verified by a fake ECR. Failures name what is missing, never a secret value.

import type { JobLayer } from "@kiln-build/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulledImages } from "../src/base-images.ts";
import { JobFailure } from "../src/failure.ts";
import { authFileJson, baseImageLogin, ecrAuthorization, registryHostOf } from "../src/registry-auth.ts";
import { type FakeEcr, startFakeEcr } from "./helpers/fake-ecr.ts";
import { layer } from "./helpers/jobs.ts";

const AWS = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "eu-west-1" };
let ecr: FakeEcr;
beforeAll(async () => {
  ecr = await startFakeEcr({ ...AWS, password: "ecr-password-from-token" });
});
afterAll(async () => {
  await ecr.close();
});

const root = (from: string, baseAuth: JobLayer["baseAuth"]) => layer(0, "root", [from, "RUN true"], "127.0.0.1:5000", { baseAuth });

describe("image references", () => {
  it("finds the registry host like Docker does", () => {
    expect(registryHostOf("python:3.12")).toBe("docker.io");
    expect(registryHostOf("library/python")).toBe("docker.io");
    expect(registryHostOf("ghcr.io/org/img:tag")).toBe("ghcr.io");
    expect(registryHostOf("127.0.0.1:5000/x/y")).toBe("127.0.0.1:5000");
    expect(registryHostOf("localhost/img")).toBe("localhost");
    expect(pulledImages(["FROM --platform=linux/amd64 us-docker.pkg.dev/p/r/img:1 AS build", "RUN x"]).base).toBe(
      "us-docker.pkg.dev/p/r/img:1",
    );
  });

  it("writes one auth file for containers/image and Docker, with Docker Hub's legacy key too", () => {
    const json = JSON.parse(
      authFileJson([
        { host: "docker.io", username: "u", password: "p:w" },
        { host: "ghcr.io", username: "a", password: "b" },
      ]),
    );
    expect(json.auths["docker.io"].auth).toBe(Buffer.from("u:p:w").toString("base64"));
    expect(json.auths["https://index.docker.io/v1/"].auth).toBe(Buffer.from("u:p:w").toString("base64"));
    expect(json.auths["ghcr.io"].auth).toBe(Buffer.from("a:b").toString("base64"));
  });
});

describe("base image logins", () => {
  it("uses REGISTRY_USERNAME / REGISTRY_PASSWORD for static credentials", async () => {
    const login = await baseImageLogin(root("FROM registry.example.com/team/base:1", { kind: "static", secret: "creds" }), {
      creds: { REGISTRY_USERNAME: "bot", REGISTRY_PASSWORD: "hunter2-long" },
    });
    expect(login).toEqual({ host: "registry.example.com", username: "bot", password: "hunter2-long" });
  });

  it("finds the registry of a base image named through an ARG, overridden by the layer's build args", async () => {
    const creds = { creds: { REGISTRY_USERNAME: "bot", REGISTRY_PASSWORD: "hunter2-long" } };
    const viaDefault = layer(0, "root", ["ARG BASE=registry.example.com/team/base:1", "FROM $BASE", "RUN true"], "127.0.0.1:5000", {
      baseAuth: { kind: "static", secret: "creds" },
    });
    expect(await baseImageLogin(viaDefault, creds)).toMatchObject({ host: "registry.example.com" });
    const viaBuildArg = {
      ...viaDefault,
      dockerfileCommands: ["ARG BASE", "FROM ${BASE}", "RUN true"],
      buildArgs: { BASE: "private.example.org:5443/base:2" },
    };
    expect(await baseImageLogin(viaBuildArg, creds)).toMatchObject({ host: "private.example.org:5443" });
    const scratch = { ...viaDefault, dockerfileCommands: ["FROM scratch", "COPY . /"] };
    await expect(baseImageLogin(scratch, creds)).rejects.toThrow(/pulls no base image/);
  });

  it("logs in to Artifact Registry as _json_key with the service account JSON", async () => {
    const sa = JSON.stringify({ type: "service_account", private_key: "-----BEGIN PRIVATE KEY-----abc" });
    const login = await baseImageLogin(root("FROM us-docker.pkg.dev/proj/repo/img:1", { kind: "gcp", secret: "gcp" }), {
      gcp: { SERVICE_ACCOUNT_JSON: sa },
    });
    expect(login).toEqual({ host: "us-docker.pkg.dev", username: "_json_key", password: sa });
  });

  it("gets an ECR token with a SigV4-signed GetAuthorizationToken", async () => {
    const ref = "FROM 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1";
    const login = await baseImageLogin(
      root(ref, { kind: "aws", secret: "aws" }),
      { aws: { AWS_ACCESS_KEY_ID: AWS.accessKeyId, AWS_SECRET_ACCESS_KEY: AWS.secretAccessKey } }, // region from the host
      { ecrEndpoint: ecr.endpoint },
    );
    expect(login).toEqual({ host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", username: "AWS", password: "ecr-password-from-token" });
    expect(ecr.problems).toEqual([]);
  });

  it("reports a refused ECR call without echoing the keys", async () => {
    const error = await ecrAuthorization({ ...AWS, secretAccessKey: "wrong-secret-key-value" }, { ecrEndpoint: ecr.endpoint }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(JobFailure);
    expect((error as JobFailure).reason).toBe("infra");
    expect((error as Error).message).toContain("UnrecognizedClientException");
    expect((error as Error).message).not.toContain("wrong-secret-key-value");
    expect((error as Error).message).not.toContain(AWS.accessKeyId);
  });

  it("names the missing key or secret, never a value", async () => {
    const error = await baseImageLogin(root("FROM r.example/x", { kind: "static", secret: "creds" }), {
      creds: { REGISTRY_PASSWORD: "pw-value-123" },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toContain("REGISTRY_USERNAME");
    expect((error as Error).message).not.toContain("pw-value-123");
    await expect(baseImageLogin(root("FROM r.example/x", { kind: "gcp", secret: "nope" }), {})).rejects.toThrow(/"nope"/);
    expect(await baseImageLogin(root("FROM r.example/x", null), {})).toBeNull();
  });
});
