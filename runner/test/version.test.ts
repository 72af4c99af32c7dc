// The versions the runner reports: `kiln-runner --version` and RUNNER_VERSION are the Kiln
// release from @kiln-build/protocol, and the orchestrator's release is read from its
// user-agent (named in a protocol_unsupported refusal).
import { execFileSync } from "node:child_process";
import path from "node:path";
import { KILN_VERSION } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { RUNNER_VERSION } from "../src/index.ts";
import { orchestratorRelease } from "../src/protocol-check.ts";

describe("runner version", () => {
  it("kiln-runner --version prints the Kiln release", () => {
    const cli = path.join(import.meta.dirname, "../src/cli.ts");
    expect(execFileSync(process.execPath, [cli, "--version"], { encoding: "utf8" }).trim()).toBe(KILN_VERSION);
    expect(RUNNER_VERSION).toBe(KILN_VERSION);
  });

  it("reads the orchestrator's release from its user-agent, and nothing from others", () => {
    expect(orchestratorRelease("kiln-orchestrator/0.3.0")).toBe("0.3.0");
    expect(orchestratorRelease("kiln-orchestrator/1.0.0-rc.1 (probe)")).toBe("1.0.0-rc.1");
    for (const other of [undefined, "", "kiln-orchestrator/1", "curl/8.5.0", "kiln-orchestrator/0.3.0;rm -rf"]) {
      expect(orchestratorRelease(other)).toBeNull();
    }
  });
});
