/** Push logins (registry-auth.ts `pushLogin`): the kind follows the secret's keys, as the base-image logins' kinds do. */
import { describe, expect, it } from "vitest";
import { pushLogin } from "../src/registry-auth.ts";
import { startFakeEcr } from "./helpers/fake-ecr.ts";

describe("pushLogin", () => {
  it("uses REGISTRY_USERNAME/REGISTRY_PASSWORD for GHCR, Docker Hub and other basic-auth registries", async () => {
    const secrets = { ghcr: { REGISTRY_USERNAME: "octocat", REGISTRY_PASSWORD: "ghp_token" } };
    expect(await pushLogin({ reference: "ghcr.io/org/app:v1", secret: "ghcr" }, secrets)).toEqual({
      host: "ghcr.io",
      username: "octocat",
      password: "ghp_token",
    });
    expect((await pushLogin({ reference: "org/app:v1", secret: "ghcr" }, secrets))?.host).toBe("docker.io");
  });

  it("logs in to Artifact Registry with the service-account key as _json_key", async () => {
    const login = await pushLogin(
      { reference: "europe-docker.pkg.dev/p/r/app:v1", secret: "gar" },
      { gar: { SERVICE_ACCOUNT_JSON: "{}" } },
    );
    expect(login).toEqual({ host: "europe-docker.pkg.dev", username: "_json_key", password: "{}" });
  });

  it("gets an ECR token by SigV4 for an AWS secret", async () => {
    const aws = { accessKeyId: "AKIAPUSHTEST", secretAccessKey: "push/secret/key", region: "eu-west-1" };
    const ecr = await startFakeEcr({ ...aws, password: "ecr-push-token" });
    try {
      const login = await pushLogin(
        { reference: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1", secret: "aws" },
        { aws: { AWS_ACCESS_KEY_ID: aws.accessKeyId, AWS_SECRET_ACCESS_KEY: aws.secretAccessKey } },
        { ecrEndpoint: ecr.endpoint },
      );
      expect(login).toEqual({ host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", username: "AWS", password: "ecr-push-token" });
    } finally {
      await ecr.close();
    }
  });

  it("needs no login without a secret, and names a missing key", async () => {
    expect(await pushLogin({ reference: "localhost:5000/app:v1", secret: null }, {})).toBeNull();
    await expect(pushLogin({ reference: "ghcr.io/o/a:v1", secret: "s" }, { s: { REGISTRY_USERNAME: "u" } })).rejects.toThrow(
      /"s" has no REGISTRY_PASSWORD/,
    );
  });
});
