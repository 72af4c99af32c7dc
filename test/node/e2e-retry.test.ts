// End to end on the real stack: a runner machine dies (SIGKILL, builds included) in the middle
// of a build; the orchestrator notices the silence (lease), retries on the workspace's other
// fleet, and the SDK's build() still returns the built image.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import { Image } from "../../sdk/src/index.ts";
import {
  type LocalRunner,
  newWorkspace,
  pushBaseImage,
  requireE2eTools,
  type StackInfo,
  sharedStack,
  startLocalRunner,
  type Tenant,
} from "./e2e-stack.ts";

let stack: StackInfo;
let tenant: Tenant;
let first: LocalRunner;
let second: LocalRunner;
let base: string;

beforeAll(async () => {
  requireE2eTools("buildah", "busybox");
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "e2e-retry");
  base = await pushBaseImage(stack, tenant, await busyboxRootfs(), "busybox:1");
  // Registered in this order, so the first attempt goes to `first` (own fleets, oldest first).
  first = await startLocalRunner(stack, tenant, { name: "first" });
  second = await startLocalRunner(stack, tenant, { name: "second" });
}, 600_000);

afterAll(async () => {
  await first?.stop();
  await second?.stop();
}, 120_000);

type BuildView = { status: string; attempts: number; fleetId: string | null };

describe("a runner that dies mid-build", { timeout: 600_000 }, () => {
  it("is replaced: the build is retried on the second runner and succeeds", async () => {
    const marker = `retry-${Date.now()}`;
    const image = Image.fromRegistry(base).runCommands(`echo started ${marker}; sleep 15; echo finished > /done`);
    const building = image.build({ client: tenant.client, logs: false });
    building.catch(() => undefined);
    // Kill the first runner once its build is under way.
    for (let i = 0; !first.log().includes('"msg":"job accepted"'); i++) {
      if (i > 600) throw new Error(`the first runner never got the job:\n${first.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 3000));
    await first.kill();

    const built = await building;
    const view = await tenant.client.json<{ status: string; buildId: string }>("GET", ["v1", "images", built.imageId!]);
    expect(view.status).toBe("succeeded");
    const build = await tenant.client.json<BuildView>("GET", ["v1", "builds", view.buildId]);
    expect(build.status).toBe("succeeded");
    expect(build.attempts).toBe(2);
    expect(build.fleetId).toBe(second.fleetId);
    expect(second.log()).toContain('"msg":"job accepted"');
  });
});
