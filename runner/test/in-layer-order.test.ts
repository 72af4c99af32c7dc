import { describe, expect, it } from "vitest";
import { inLayerOrder } from "../src/in-layer-order.ts";

/** A preparation whose every call is recorded and settled by hand. */
function manual() {
  const started: number[] = [];
  const settle = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  const prepare = (_layer: string, i: number) =>
    new Promise<number>((resolve, reject) => {
      started.push(i);
      settle.set(i, { resolve: () => resolve(i), reject });
    });
  return { started, settle, prepare };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("inLayerOrder", () => {
  it("prepares one layer after another by default", async () => {
    const { started, settle, prepare } = manual();
    const prepared = inLayerOrder(["a", "b", "c"], prepare);
    await tick();
    expect(started).toEqual([0]);
    settle.get(0)!.resolve();
    await tick();
    expect(started).toEqual([0, 1]);
    settle.get(1)!.resolve();
    await tick();
    settle.get(2)!.resolve();
    expect(await Promise.all(prepared)).toEqual([0, 1, 2]);
  });

  it("prepares a group's layers side by side, and the next group once all of them are ready", async () => {
    const { started, settle, prepare } = manual();
    const prepared = inLayerOrder(["a", "b", "c", "d"], prepare, [[0, 1, 2], [3]]);
    await tick();
    expect(started).toEqual([0, 1, 2]);
    settle.get(2)!.resolve();
    settle.get(0)!.resolve();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    settle.get(1)!.resolve();
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    settle.get(3)!.resolve();
    expect(await Promise.all(prepared)).toEqual([0, 1, 2, 3]);
  });

  it("fails the later groups with a failed layer, and never prepares them", async () => {
    const { started, settle, prepare } = manual();
    const prepared = inLayerOrder(["a", "b", "c"], prepare, [[0, 1], [2]]);
    await tick();
    settle.get(0)!.resolve();
    settle.get(1)!.reject(new Error("download refused"));
    await expect(prepared[1]).rejects.toThrow("download refused");
    await expect(prepared[2]).rejects.toThrow("download refused");
    expect(started).toEqual([0, 1]);
    expect(await prepared[0]).toBe(0);
  });
});
