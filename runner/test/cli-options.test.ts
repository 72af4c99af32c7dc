// The command line: every flag has a KILN_RUNNER_* variable, flags win over variables, and
// the result validates against the config schema with the documented defaults.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { configFromFlags, type Flags, withRunnerOptions } from "../src/cli-options.ts";
import { resolveConfig } from "../src/config.ts";

const SECRET_A = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_B = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

function parse(argv: string[]): Flags {
  const command = withRunnerOptions(new Command("serve")).exitOverride();
  command.parse(argv, { from: "user" });
  return command.opts();
}

describe("kiln-runner flags", () => {
  it("reads KILN_RUNNER_* variables and lets flags override them", () => {
    process.env.KILN_RUNNER_WEBHOOK_SECRET = `${SECRET_A},${SECRET_B}`;
    process.env.KILN_RUNNER_PORT = "9000";
    process.env.KILN_RUNNER_CONCURRENCY = "3";
    process.env.KILN_RUNNER_ISOLATION = "oci";
    process.env.KILN_RUNNER_INSECURE_REGISTRY = "mirror.local:5000, other:80";
    process.env.KILN_RUNNER_KEEP_IMAGES = "true";
    const config = resolveConfig(configFromFlags(parse(["--port", "9100", "--storage-driver", "overlay", "--gpus", "L4:2"])));
    expect(config).toMatchObject({
      webhookSecrets: [SECRET_A, SECRET_B],
      port: 9100,
      concurrency: 3,
      isolation: "oci",
      storageDriver: "overlay",
      gpus: "L4:2",
      insecureRegistries: ["mirror.local:5000", "other:80"],
      keepImages: true,
    });
  });

  it("uses the documented defaults", () => {
    const config = resolveConfig(configFromFlags(parse(["--webhook-secret", SECRET_A])));
    expect(config).toMatchObject({
      host: "0.0.0.0",
      port: 8080,
      concurrency: 1,
      backend: "buildah",
      isolation: "chroot",
      storageDriver: "vfs",
      pullBase: "missing",
      heartbeatMs: 15_000,
      killGraceMs: 10_000,
      logChunkBytes: 1024 * 1024,
      keepImages: false,
      chainLayers: true,
    });
  });

  it("turns layer chains off with --no-chain-layers", () => {
    expect(resolveConfig(configFromFlags(parse(["--webhook-secret", SECRET_A, "--no-chain-layers"]))).chainLayers).toBe(false);
  });

  it("reads secrets from a file and refuses a missing or malformed one", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-cli-"));
    await writeFile(path.join(dir, "secrets"), `${SECRET_A}\n${SECRET_B}\n`);
    expect(resolveConfig(configFromFlags(parse(["--webhook-secret-file", path.join(dir, "secrets")]))).webhookSecrets).toEqual([
      SECRET_A,
      SECRET_B,
    ]);
    await rm(dir, { recursive: true, force: true });
    expect(() => resolveConfig(configFromFlags(parse([])))).toThrow(/webhookSecrets/);
    expect(() => resolveConfig(configFromFlags(parse(["--webhook-secret", "not-a-secret"])))).toThrow(/whsec_/);
    expect(() => parse(["--backend", "kaniko"])).toThrow();
  });
});
