/**
 * The fixture most real-stack tests share: the run's shared stack, a workspace of their own
 * with a registered local runner, a busybox base pushed to its registry, and a temporary
 * directory; made in `beforeAll`, removed in `afterAll`.
 *
 * @example
 * const fx = useBusyboxWorkspace("e2e-cache", { concurrency: 2 });
 * it("builds", async () => { await Image.fromRegistry(fx.base).runCommands("true").build({ client: fx.tenant.client }); });
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import {
  type LocalRunner,
  type LocalRunnerOptions,
  newWorkspace,
  pushBaseImage,
  requireE2eTools,
  type StackInfo,
  sharedStack,
  startLocalRunner,
  type Tenant,
} from "./e2e-stack.ts";

/** What the fixture holds once `beforeAll` has run. */
export type BusyboxWorkspace = { stack: StackInfo; tenant: Tenant; runner: LocalRunner; base: string; work: string };

/** Registers the hooks that make and remove the fixture; its fields are set before the first test. */
export function useBusyboxWorkspace(prefix: string, options: LocalRunnerOptions & { tools?: string[] } = {}): BusyboxWorkspace {
  const { tools = [], ...runnerOptions } = options;
  const fx = {} as BusyboxWorkspace;
  beforeAll(async () => {
    requireE2eTools("buildah", "busybox", ...tools);
    fx.stack = await sharedStack();
    fx.tenant = await newWorkspace(fx.stack, prefix);
    fx.work = mkdtempSync(path.join(os.tmpdir(), `kiln-${prefix}-`));
    [fx.runner, fx.base] = await Promise.all([
      startLocalRunner(fx.stack, fx.tenant, runnerOptions),
      busyboxRootfs().then((rootfs) => pushBaseImage(fx.stack, fx.tenant, rootfs, "busybox:1")),
    ]);
  }, 600_000);
  afterAll(async () => {
    await fx.runner?.stop();
    if (fx.work) rmSync(fx.work, { recursive: true, force: true });
  }, 120_000);
  return fx;
}
