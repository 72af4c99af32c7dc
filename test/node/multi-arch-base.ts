/**
 * Two-platform bases for the multi-platform end-to-end tests: busybox (the amd64 rootfs of
 * runner/test/helpers/base-images.ts and an arm64 one from Debian's `busybox-static:arm64`,
 * `apt-get download`, no emulation needed to unpack it) and Debian bookworm minbase
 * (`debootstrap --arch=arm64`, slow: its second stage runs under QEMU). Each is built FROM
 * scratch per platform into one buildah manifest list, pushed with `manifest push --all` as an
 * OCI index.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runProcess } from "../../runner/src/process.ts";
import { aptMirror, busyboxRootfs, debianRootfs, TEST_CACHE, testStorage } from "../../runner/test/helpers/base-images.ts";
import type { StackInfo, Tenant } from "./e2e-stack.ts";

/** The arm64 busybox rootfs (applet links as in the amd64 one), made once under the test cache. */
export async function arm64BusyboxRootfs(): Promise<string> {
  const dir = path.join(TEST_CACHE, "busybox-arm64-rootfs");
  if (existsSync(path.join(dir, ".complete"))) return dir;
  await rm(dir, { recursive: true, force: true });
  const download = await mkdtemp(path.join(os.tmpdir(), "kiln-arm64-deb-"));
  try {
    execFileSync("apt-get", ["download", "-q", "busybox-static:arm64"], { cwd: download, stdio: "pipe" });
    const deb = readdirSync(download).find((f) => f.endsWith("_arm64.deb"));
    if (!deb)
      throw new Error("apt-get download busybox-static:arm64 gave no package; run `dpkg --add-architecture arm64 && apt-get update`");
    execFileSync("dpkg-deb", ["-x", path.join(download, deb), path.join(download, "x")]);
    for (const d of ["bin", "tmp", "etc", "root", "usr/bin", "usr/local/bin"]) await mkdir(path.join(dir, d), { recursive: true });
    await copyFile(path.join(download, "x/bin/busybox"), path.join(dir, "bin/busybox"));
    // The same busybox release as the host's: its applet list, without running the arm64 binary.
    const applets = execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const applet of applets) if (applet !== "busybox") await symlink("busybox", path.join(dir, "bin", applet));
    await writeFile(path.join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    await writeFile(path.join(dir, "etc/group"), "root:x:0:\n");
    await writeFile(path.join(dir, ".complete"), "");
  } finally {
    await rm(download, { recursive: true, force: true });
  }
  return dir;
}

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
  const reference = `${stack.host}/${tenant.workspace}/${repository}`;
  const storage = await testStorage();
  const work = await mkdtemp(path.join(os.tmpdir(), "kiln-multiarch-"));
  const buildah = (...args: string[]) => {
    const r = spawnSync("buildah", ["--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", "vfs", ...args], {
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`buildah ${args.slice(0, 3).join(" ")} failed: ${r.stderr.slice(-2000)}`);
    return r.stdout;
  };
  try {
    // .complete is the cache marker of the rootfs directories, not part of the image.
    await writeFile(path.join(work, "Dockerfile"), "FROM scratch\nCOPY . /\n");
    await writeFile(path.join(work, "ignore"), ".complete\n");
    buildah("manifest", "create", "kiln-multiarch-base");
    for (const [platform, dir] of Object.entries(rootfs)) {
      const args = ["--quiet", "--isolation", "chroot", "--platform", platform, "--manifest", "kiln-multiarch-base"];
      buildah("bud", ...args, "--ignorefile", path.join(work, "ignore"), "-f", path.join(work, "Dockerfile"), dir);
    }
    buildah(
      "manifest",
      "push",
      "--all",
      "--tls-verify=false",
      "--creds",
      `e2e:${tenant.token}`,
      "kiln-multiarch-base",
      `docker://${reference}`,
    );
    return reference;
  } finally {
    spawnSync("buildah", ["--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", "vfs", "rmi", "--all", "--force"], {
      stdio: "ignore",
    });
    await storage.dispose();
    await rm(work, { recursive: true, force: true });
  }
}
