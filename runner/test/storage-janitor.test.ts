// The storage janitor with several tools at once (a job pushes layer i while layer i+1
// builds): cleanup runs only when no build or push is running, only after a stopped build,
// tools arriving meanwhile wait for it, and a stopped push alone cleans nothing.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildBackend } from "../src/backends/types.ts";
import { silentLogger } from "../src/logger.ts";
import { StorageJanitor } from "../src/storage-janitor.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-janitor-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A janitor whose cleanup appends a line to a file (after `delaySeconds`). */
function janitorWithLog(name: string, delaySeconds = 0): { janitor: StorageJanitor; cleanups: () => Promise<number> } {
  const file = path.join(dir, name);
  const backend = {
    cleanup: () => ({ argv: ["sh", "-c", `sleep ${delaySeconds}; echo cleaned >> "${file}"`] }),
  } as unknown as BuildBackend;
  const cleanups = () =>
    readFile(file, "utf8").then(
      (t) => t.split("\n").filter(Boolean).length,
      () => 0,
    );
  return { janitor: new StorageJanitor(backend, silentLogger), cleanups };
}

describe("StorageJanitor", () => {
  it("waits for a running push before cleaning up after a stopped build", async () => {
    const { janitor, cleanups } = janitorWithLog("push-then-build");
    const leavePush = await janitor.enter();
    const leaveBuild = await janitor.enter();
    await leaveBuild(true); // the build was killed mid-way; the push still runs
    expect(await cleanups()).toBe(0);
    await leavePush(false); // the last tool leaves: the dirty mark is still there
    expect(await cleanups()).toBe(1);
  });

  it("cleans nothing when no build was stopped (a push that ends, even stopped, leaves no container)", async () => {
    const { janitor, cleanups } = janitorWithLog("push-only");
    const leave = await janitor.enter();
    await leave(false);
    expect(await cleanups()).toBe(0);
  });

  it("makes tools that arrive during a cleanup wait for it", async () => {
    const { janitor, cleanups } = janitorWithLog("arrivals", 0.3);
    const leaveBuild = await janitor.enter();
    const leaving = leaveBuild(true);
    const entered = janitor.enter().then(async (leave) => {
      const seen = await cleanups();
      await leave(false);
      return seen;
    });
    await leaving;
    expect(await entered).toBe(1);
  });
});
