/**
 * Two-platform bases for the multi-platform end-to-end tests: busybox (the amd64 rootfs of
 * runner/test/helpers/base-images.ts and an arm64 one from Debian's `busybox-static:arm64`,
 * `apt-get download`, no emulation needed to unpack it) and Debian bookworm minbase
 * (`debootstrap --arch=arm64`, slow: its second stage runs under QEMU). Each is built FROM
 * scratch per platform into one buildah manifest list, pushed with `manifest push --all` as an
 * OCI index.
 */
import { existsSync, readdirSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { runProcess } from "../../runner/src/process.ts";
import {
  aptMirror,
  arm64BusyboxRootfs,
  busyboxRootfs,
  debianRootfs,
  pushMultiPlatformImage,
  TEST_CACHE,
  testStorage,
} from "../../runner/test/helpers/base-images.ts";
import type { StackInfo, Tenant } from "./e2e-stack.ts";

/** An arm64 Debian bookworm minbase rootfs (`debootstrap --arch=arm64` under QEMU), made once under the test cache. */
export async function arm64DebianRootfs(): Promise<string> {
  const dir = path.join(TEST_CACHE, "bookworm-minbase-arm64");
  if (existsSync(path.join(dir, ".complete"))) return dir;
  await rm(dir, { recursive: true, force: true });
  const argv = ["debootstrap", "--arch=arm64", "--variant=minbase", "bookworm", dir, aptMirror()];
  const result = await runProcess({ argv }, { killGraceMs: 5_000 });
  if (result.exitCode !== 0)
    throw new Error(`debootstrap --arch=arm64 failed with ${result.exitCode}; see ${dir}/debootstrap/debootstrap.log`);
  // Device nodes come from the build container; downloaded packages are not part of a base.
  for (const d of ["dev", "proc", "sys"]) {
    for (const entry of readdirSync(path.join(dir, d))) await rm(path.join(dir, d, entry), { recursive: true, force: true });
  }
  await rm(path.join(dir, "var/cache/apt/archives"), { recursive: true, force: true });
  await mkdir(path.join(dir, "var/cache/apt/archives/partial"), { recursive: true });
  await writeFile(path.join(dir, ".complete"), "");
  return dir;
}

/** Pushes `<workspace>/<repository>` as an OCI index of a linux/amd64 and a linux/arm64 busybox image; returns the reference. */
export async function pushMultiArchBusybox(stack: StackInfo, tenant: Tenant, repository: string): Promise<string> {
  return pushMultiArch(stack, tenant, repository, { "linux/amd64": await busyboxRootfs(), "linux/arm64": await arm64BusyboxRootfs() });
}

/** Pushes `<workspace>/<repository>` as an OCI index of a linux/amd64 and a linux/arm64 Debian bookworm minbase image. */
export async function pushMultiArchDebian(stack: StackInfo, tenant: Tenant, repository: string): Promise<string> {
  return pushMultiArch(stack, tenant, repository, { "linux/amd64": await debianRootfs(), "linux/arm64": await arm64DebianRootfs() });
}

/** Pushes one image per platform, each FROM scratch with that platform's rootfs, as one OCI index. */
async function pushMultiArch(stack: StackInfo, tenant: Tenant, repository: string, rootfs: Record<string, string>): Promise<string> {
  const storage = await testStorage();
  try {
    return await pushMultiPlatformImage(rootfs, `${stack.host}/${tenant.workspace}/${repository}`, storage, `e2e:${tenant.token}`);
  } finally {
    await storage.dispose();
  }
}
