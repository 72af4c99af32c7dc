import os from "node:os";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));

// Test-only Ed25519 attestation key (a JWK with its private part `d`); never used outside tests.
const TEST_ATTESTATION_KEY =
  '{"kty":"OKP","crv":"Ed25519","kid":"kiln-test-1","x":"sPY09vxn8bXsHc0J8iDYMt_i97FM7wZWhA6HcnfaWL4","d":"PjDgk04IuqAB78ywz_hp9fhgFAu738ftPSEw87TuQKM"}';

// Two projects: `workers` runs inside workerd (the same runtime as production and
// `wrangler dev`), `node` runs the SDK and the runner on Node.
export default defineConfig({
  test: {
    // The JSON report feeds .ci/run's closing "N passed, N failed" line.
    reporters: ["default", ["json", { outputFile: "test-artifacts/vitest.json" }]],
    projects: [
      {
        test: {
          name: "node",
          include: [
            "protocol/test/**/*.test.ts",
            "sdk/test/**/*.test.ts",
            "runner/test/**/*.test.ts",
            "test/node/**/*.test.ts",
            // The security suite: attacks through the real stack and runner (test/security/workers runs in workerd).
            "test/security/*.test.ts",
          ],
          environment: "node",
          testTimeout: 60_000,
          // The developer's own `kiln login` profile must not leak into tests that rely on defaults.
          env: {
            KILN_CONFIG: path.join(os.tmpdir(), "kiln-tests-have-no-profiles.toml"),
            // The SDK's hash index (docs/sdk.md) goes to a temporary cache, never the developer's.
            KILN_CACHE_DIR: path.join(os.tmpdir(), "kiln-tests-cache"),
          },
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: migrations,
                // Test-only values of the Worker secrets (docs/deploy.md sets real ones).
                KILN_ADMIN_TOKEN: "kiln-test-admin-token-0123456789abcdef",
                KILN_SECRET_KEY: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                KILN_ATTESTATION_KEY: TEST_ATTESTATION_KEY,
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts", "test/security/workers/**/*.test.ts"],
          setupFiles: ["test/workers/apply-migrations.ts"],
          // Tests assert outcomes, not speed: a loaded 2-core machine can take several seconds for one.
          testTimeout: 30_000,
          // A real HTTP endpoint on 127.0.0.1 that plays a runner fleet (dispatch tests).
          globalSetup: ["test/node/fleet-recorder-setup.ts"],
        },
      },
    ],
  },
});
