/**
 * Keeps the shared e2e stack (e2e-stack.ts `sharedStack()`) alive for one vitest run:
 * `node e2e-stack-daemon.ts <state dir> <owner pid>` starts wrangler dev, writes its address
 * to `<state dir>/state.json`, and stops it (removing the state) once the owner process is
 * gone, so no test file has to know which file was last.
 */
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { stackInfo, writeStackState } from "./e2e-stack.ts";
import { startStack } from "./registry-harness.ts";

const [dir, ownerArg] = process.argv.slice(2);
if (!dir || !ownerArg) throw new Error("usage: e2e-stack-daemon.ts <state dir> <owner pid>");
const owner = Number(ownerArg);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let stack: Awaited<ReturnType<typeof startStack>>;
try {
  stack = await startStack();
} catch (error) {
  writeStackState(dir, { error: String((error as Error)?.stack ?? error) });
  // Leave the error for the waiting files; the directory goes with the next run's temp cleanup.
  process.exit(1);
}
writeStackState(dir, stackInfo(stack));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
while (alive(owner)) await sleep(1000);
await stop();
