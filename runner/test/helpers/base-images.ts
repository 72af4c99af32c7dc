/**
 * Locally made base images for build tests: a busybox rootfs (fast cases) and a Debian
 * bookworm minbase rootfs from debootstrap (a real `aptInstall`). Root filesystems are
 * cached under a stable temp path, so repeated runs (and parallel test files, through a
 * lock) build each once; images are pushed to the test file's own registry.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { runProcess } from "../../src/process.ts";

/** Stable cache of root filesystems shared by test runs. */
export const TEST_CACHE = path.join(tmpdir(), "kiln-runner-test-cache");

/** Buildah storage for one test file (vfs, chroot), so parallel files do not share state. */
export type TestStorage = { root: string; runRoot: string; dispose(): Promise<void> };

/** Creates a private buildah storage root. */
export async function testStorage(): Promise<TestStorage> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-storage-"));
  return {
    root: path.join(dir, "root"),
    runRoot: path.join(dir, "run"),
    async dispose() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The busybox rootfs (static busybox plus its applet links), built once. */
export async function busyboxRootfs(): Promise<string> {
  return cached("busybox-rootfs", (dir) => busyboxTree(dir, "/bin/busybox"));
}

/**
 * An arm64 busybox rootfs, built once: the binary of Debian's `busybox-static:arm64` (`apt-get
 * download` and `dpkg-deb -x`, no emulation needed), with the applet links of the host's busybox
 * (the same release). Needs `dpkg --add-architecture arm64 && apt-get update`.
 */
export async function arm64BusyboxRootfs(): Promise<string> {
  return cached("busybox-rootfs-arm64", async (dir) => {
    const download = await mkdtemp(path.join(tmpdir(), "kiln-arm64-deb-"));
    try {
      execFileSync("apt-get", ["download", "-q", "busybox-static:arm64"], { cwd: download, stdio: "pipe" });
      const deb = readdirSync(download).find((f) => f.endsWith("_arm64.deb"));
      if (!deb)
        throw new Error("apt-get download busybox-static:arm64 gave no package; run `dpkg --add-architecture arm64 && apt-get update`");
      execFileSync("dpkg-deb", ["-x", path.join(download, deb), path.join(download, "x")]);
      await busyboxTree(dir, path.join(download, "x/bin/busybox"));
    } finally {
      await rm(download, { recursive: true, force: true });
    }
  });
}

/** Fills `dir` with a busybox binary, the host busybox's applet links to it, and a root user. */
async function busyboxTree(dir: string, binary: string): Promise<void> {
  for (const d of ["bin", "tmp", "etc", "root", "usr/bin", "usr/local/bin"]) await mkdir(path.join(dir, d), { recursive: true });
  await copyFile(binary, path.join(dir, "bin", "busybox"));
  const applets = execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const applet of applets) if (applet !== "busybox") await symlink("busybox", path.join(dir, "bin", applet));
  await writeFile(path.join(dir, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  await writeFile(path.join(dir, "etc", "group"), "root:x:0:\n");
}

/** A Debian bookworm `minbase` rootfs from debootstrap against this machine's apt mirror, built once. */
export async function debianRootfs(): Promise<string> {
  return cached("bookworm-minbase", async (dir) => {
    const result = await runProcess({ argv: ["debootstrap", "--variant=minbase", "bookworm", dir, aptMirror()] }, { killGraceMs: 5_000 });
    if (result.exitCode !== 0) throw new Error(`debootstrap failed with ${result.exitCode}; see ${dir}/debootstrap/debootstrap.log`);
    // Device nodes are provided by the build container; an image must not carry them.
    for (const d of ["dev", "proc", "sys"]) {
      for (const entry of await readdir(path.join(dir, d)).catch(() => []))
        await rm(path.join(dir, d, entry), { recursive: true, force: true });
    }
    await rm(path.join(dir, "var/cache/apt/archives"), { recursive: true, force: true });
    await mkdir(path.join(dir, "var/cache/apt/archives/partial"), { recursive: true });
  });
}

/** The first Debian mirror in this machine's apt sources. */
export function aptMirror(): string {
  const files = ["/etc/apt/sources.list", ...readdirSafe("/etc/apt/sources.list.d").map((f) => path.join("/etc/apt/sources.list.d", f))];
  for (const file of files) {
    if (!existsSync(file) || !/\.(list|sources)$/.test(file)) continue;
    const text = readFileSync(file, "utf8");
    const uri = /^URIs:\s*(\S+)/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text)?.[1];
    if (uri && !uri.includes("security")) return uri;
  }
  return "http://deb.debian.org/debian";
}

/** Builds `FROM scratch` + the rootfs with buildah and pushes it as `reference` (plain HTTP registry, optional `user:password`). */
export async function pushRootfsImage(rootfs: string, reference: string, storage: TestStorage, creds?: string): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), "kiln-base-"));
  try {
    await writeFile(path.join(work, "Dockerfile"), "FROM scratch\nCOPY . /\n");
    await writeFile(path.join(work, "ignore"), "");
    const global = ["buildah", "--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", "vfs"];
    await run([
      ...global,
      "bud",
      "--isolation",
      "chroot",
      "--quiet",
      "--ignorefile",
      path.join(work, "ignore"),
      "-f",
      path.join(work, "Dockerfile"),
      "-t",
      reference,
      rootfs,
    ]);
    await run([
      ...global,
      "push",
      "--quiet",
      "--tls-verify=false",
      ...(creds ? ["--creds", creds] : []),
      "--digestfile",
      path.join(work, "digest"),
      reference,
      `docker://${reference}`,
    ]);
    return readFileSync(path.join(work, "digest"), "utf8").trim();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Builds one `FROM scratch` + rootfs image per platform (`platform -> rootfs`) into a buildah
 * manifest list and pushes it whole as `reference`, an OCI index (plain HTTP registry, optional
 * `user:password`). A `.complete` cache marker inside a rootfs is left out.
 */
export async function pushMultiPlatformImage(
  rootfsByPlatform: Record<string, string>,
  reference: string,
  storage: TestStorage,
  creds?: string,
): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), "kiln-multiarch-"));
  const global = ["buildah", "--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", "vfs"];
  const list = path.basename(work).toLowerCase();
  try {
    await writeFile(path.join(work, "Dockerfile"), "FROM scratch\nCOPY . /\n");
    await writeFile(path.join(work, "ignore"), ".complete\n");
    await run([...global, "manifest", "create", list]);
    for (const [platform, rootfs] of Object.entries(rootfsByPlatform)) {
      const bud = ["bud", "--quiet", "--isolation", "chroot", "--platform", platform, "--manifest", list];
      await run([...global, ...bud, "--ignorefile", path.join(work, "ignore"), "-f", path.join(work, "Dockerfile"), rootfs]);
    }
    const push = ["manifest", "push", "--all", "--quiet", "--tls-verify=false", ...(creds ? ["--creds", creds] : [])];
    await run([...global, ...push, list, `docker://${reference}`]);
    return reference;
  } finally {
    await run([...global, "manifest", "rm", list]).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

async function run(argv: string[]): Promise<void> {
  const err: Buffer[] = [];
  const result = await runProcess(
    { argv },
    { stderr: { write: (d) => (err.push(d), true), waitForDrain: async () => {}, end() {} }, killGraceMs: 5_000 },
  );
  if (result.exitCode !== 0)
    throw new Error(`${argv.slice(0, 6).join(" ")} ... failed (${result.exitCode}): ${Buffer.concat(err).toString().slice(-2000)}`);
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Builds `name` under the cache once, guarded by a lock directory that survives crashed owners. */
async function cached(name: string, build: (dir: string) => Promise<void>): Promise<string> {
  const dir = path.join(TEST_CACHE, name);
  const marker = `${dir}.complete`;
  if (existsSync(marker)) return dir;
  await mkdir(TEST_CACHE, { recursive: true });
  const lock = `${dir}.lock`;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(path.join(lock, "pid"), String(process.pid));
      break;
    } catch {
      if (existsSync(marker)) return dir;
      const owner = Number(readFileSafe(path.join(lock, "pid")));
      if (owner && !alive(owner)) await rm(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
  try {
    if (existsSync(marker)) return dir;
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await build(dir);
    await writeFile(marker, new Date().toISOString());
    return dir;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
