/**
 * Test prerequisites: the system tools real-build tests call. A missing tool fails the
 * test file with the apt-get line that installs it (CI installs them; silently skipping
 * would hide a broken CI).
 */
import { execFileSync } from "node:child_process";

const PACKAGES: Record<string, string> = {
  buildah: "buildah",
  skopeo: "skopeo",
  "docker-registry": "docker-registry",
  busybox: "busybox-static",
  debootstrap: "debootstrap",
};

/** Throws a clear error naming every missing tool and its Debian package. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((tool) => {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  const packages = missing.map((t) => PACKAGES[t] ?? t).join(" ");
  throw new Error(
    `runner build tests need ${missing.join(", ")} on PATH and run as root. Install with: apt-get install -y --no-install-recommends ${packages}`,
  );
}

/** True when running as root (buildah chroot isolation with vfs needs it). */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("runner build tests run buildah with chroot isolation and must run as root");
}
