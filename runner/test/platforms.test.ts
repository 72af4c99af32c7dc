// Which platforms a runner reports: its own architecture natively, others only through an
// enabled QEMU binfmt_misc handler (read from a directory laid out like /proc/sys/fs/binfmt_misc).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { binfmtHandlerEnabled, detectPlatforms, platformProblem, platformsOf } from "../src/platforms.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-binfmt-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("platformsOf", () => {
  it("builds its own architecture natively and others only with their handler", () => {
    expect(platformsOf("linux", "x64", new Set())).toEqual({ native: ["linux/amd64"], emulated: [] });
    expect(platformsOf("linux", "x64", new Set(["qemu-aarch64", "qemu-x86_64"]))).toEqual({
      native: ["linux/amd64"],
      emulated: ["linux/arm64"],
    });
    expect(platformsOf("linux", "arm64", new Set(["qemu-x86_64"]))).toEqual({ native: ["linux/arm64"], emulated: ["linux/amd64"] });
  });

  it("offers nothing natively on a platform Kiln does not build for", () => {
    expect(platformsOf("darwin", "arm64", new Set())).toEqual({ native: [], emulated: [] });
  });
});

describe("detectPlatforms", () => {
  it("reads enabled handlers and ignores disabled or missing ones", async () => {
    expect(binfmtHandlerEnabled("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")).toBe(true);
    expect(binfmtHandlerEnabled("disabled\ninterpreter x\n")).toBe(false);
    await writeFile(path.join(dir, "qemu-aarch64"), "disabled\ninterpreter /usr/bin/qemu-aarch64-static\n");
    const off = await detectPlatforms(dir);
    await writeFile(path.join(dir, "qemu-aarch64"), "enabled\ninterpreter /usr/bin/qemu-aarch64-static\n");
    const on = await detectPlatforms(dir);
    if (process.arch === "x64") {
      expect(off).toEqual({ native: ["linux/amd64"], emulated: [] });
      expect(on).toEqual({ native: ["linux/amd64"], emulated: ["linux/arm64"] });
    } else {
      expect(on.emulated).not.toContain(on.native[0]);
    }
    expect(await detectPlatforms(path.join(dir, "absent"))).toEqual(platformsOf(process.platform, process.arch, new Set()));
  });
});

describe("platformProblem", () => {
  it("accepts native and emulated platforms and explains the rest", () => {
    const amd = { native: ["linux/amd64" as const], emulated: [] };
    expect(platformProblem(amd, undefined)).toBeNull();
    expect(platformProblem(amd, "linux/amd64")).toBeNull();
    expect(platformProblem({ native: ["linux/amd64"], emulated: ["linux/arm64"] }, "linux/arm64")).toBeNull();
    expect(platformProblem(amd, "linux/arm64")).toBe(
      "this runner cannot build linux/arm64 (it builds linux/amd64; emulation needs the QEMU binfmt_misc handler qemu-aarch64 enabled); the fleet's declared platforms should match its runners (PATCH /v1/fleets/<id> platforms)",
    );
  });
});
