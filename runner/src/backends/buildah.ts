/**
 * The default backend: `buildah bud` then `buildah push`. Isolation (chroot by default:
 * works as root without user namespaces) and storage driver (vfs by default: no overlay or
 * FUSE needed) are configurable; GPUs are CDI devices (`--device nvidia.com/gpu=N`).
 */
import { readFile } from "node:fs/promises";
import type { GpuDevice } from "../gpu.ts";
import type { Command } from "../process.ts";
import { type BuildBackend, type BuildRequest, type ChainProgress, lastExitCode, type StorageLocation } from "./types.ts";

// runc (via buildah's chroot isolation) copying itself into a sealed memfd can fail under load
// with "Close_Fd sealing memfd copy: Device or resource busy" before the step's command starts.
const RUNTIME_START_FAILURE = /sealing memfd copy/;

/** `STEP 3/7: RUN ...` (single-stage builds only: a multi-stage one prefixes `[1/2] `). */
const STEP_LINE = /^STEP (\d+)\/(\d+): /;
/** `--> 9cbc3781c5f`: the image a step committed, as buildah prints it (the id's first 11 hex digits). */
const STEP_IMAGE_LINE = /^--> ([0-9a-f]{11,64})$/;

/** Options of the buildah backend. */
export type BuildahOptions = {
  bin?: string;
  isolation?: "chroot" | "oci" | "rootless";
  storageDriver?: string;
  /** Storage root and run root (default: containers-storage's). */
  root?: string | undefined;
  runRoot?: string | undefined;
  /**
   * `TMPDIR` of builds. buildah keeps the contents of `RUN --mount=type=cache` mounts in
   * `$TMPDIR/buildah-cache/<id>`, shared by every build with the same TMPDIR: one per workspace
   * keeps one workspace's cache mounts from another's.
   */
  tmpDir?: string | undefined;
};

/** `buildah bud` + `buildah push`. */
export class BuildahBackend implements BuildBackend {
  readonly name = "buildah";
  readonly chains = true;
  readonly #options: Required<Pick<BuildahOptions, "bin" | "isolation" | "storageDriver">> & BuildahOptions;

  constructor(options: BuildahOptions = {}) {
    this.#options = { bin: "buildah", isolation: "chroot", storageDriver: "vfs", ...options };
  }

  runFlags(): string[] {
    return [];
  }

  build(request: BuildRequest): Command {
    return {
      ...(this.#options.tmpDir ? { env: { TMPDIR: this.#options.tmpDir } } : {}),
      argv: [
        ...this.#global(),
        "bud",
        "--isolation",
        this.#options.isolation,
        "--file",
        request.dockerfile,
        "--tag",
        request.target,
        "--authfile",
        request.authFile,
        `--tls-verify=${request.pullTlsVerify}`,
        `--pull=${request.pull}`,
        ...(request.stepImages ? ["--layers", "--no-cache"] : []),
        ...(request.stage ? ["--target", request.stage] : []),
        // Also picks the matching entry of a base image index; RUN steps of another platform run under QEMU.
        ...(request.platform ? ["--platform", request.platform] : []),
        ...request.secrets.flatMap((secret) => ["--secret", `id=${secret.id},src=${secret.path}`]),
        ...Object.entries(request.buildArgs).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
        ...request.gpus.flatMap((gpu: GpuDevice) => ["--device", `nvidia.com/gpu=${gpu.index}`]),
        request.contextDir,
      ],
    };
  }

  push(request: BuildRequest): Command {
    return {
      argv: [
        ...this.#global(),
        "push",
        "--authfile",
        request.authFile,
        `--tls-verify=${!request.targetInsecure}`,
        "--digestfile",
        request.metadataFile,
        request.target,
        `docker://${request.target}`,
      ],
    };
  }

  chainProgress(line: string): ChainProgress | null {
    const step = STEP_LINE.exec(line);
    if (step) return { step: Number(step[1]), totalSteps: Number(step[2]) };
    const image = STEP_IMAGE_LINE.exec(line);
    return image ? { image: image[1]! } : null;
  }

  tag(image: string, target: string): Command {
    return { argv: [...this.#global(), "tag", image, target] };
  }

  imageConfig(image: string): Command {
    return { argv: [...this.#global(), "inspect", "--type", "image", "--format", "{{.Config}}", image] };
  }

  async digest(request: BuildRequest): Promise<string> {
    return (await readFile(request.metadataFile, "utf8")).trim();
  }

  remove(target: string): Command {
    // Not --force: that would also delete the container of a concurrent build using the image.
    return { argv: [...this.#global(), "rmi", target] };
  }

  cleanup(): Command {
    // Only containers buildah created (marked `*` in `buildah containers`), never podman's.
    return { argv: [...this.#global(), "rm", "--all"] };
  }

  prune(): Command {
    // Untagged images without children, and the parents that leaves dangling.
    return { argv: [...this.#global(), "rmi", "--prune"] };
  }

  withStorage(storage: StorageLocation): BuildahBackend {
    return new BuildahBackend({ ...this.#options, root: storage.root, runRoot: storage.runRoot, tmpDir: storage.tmpDir });
  }

  stepExitCode(tail: readonly string[]): number | null {
    // The runtime failing to start the step's process ends the same way, before the user's command ran:
    // not the build's failure but the machine's, retried as infra.
    if (tail.some((line) => RUNTIME_START_FAILURE.test(line))) return null;
    // buildah: `Error: building at STEP "RUN exit 3": exit status 3` (newer: `...: while running runtime: exit status 3`).
    return lastExitCode(tail, /building at STEP .*exit status (\d+)\s*$/);
  }

  /** Commands that mount a local image's root filesystem (the SBOM collector, runner/src/sbom-collect.ts). */
  rootfs() {
    return {
      from: (image: string): Command => ({ argv: [...this.#global(), "from", "--pull=never", image] }),
      mount: (container: string): Command => ({ argv: [...this.#global(), "mount", container] }),
      remove: (container: string): Command => ({ argv: [...this.#global(), "rm", container] }),
    };
  }

  /** Prints a local image's id (its config digest): the base digest check (runner/src/base-digests.ts). */
  imageId(image: string): Command {
    return { argv: [...this.#global(), "images", "--no-trunc", "--format", "{{.ID}}", image] };
  }

  version(): Command {
    return { argv: [this.#options.bin, "--version"] };
  }

  #global(): string[] {
    const o = this.#options;
    return [
      o.bin,
      ...(o.root ? ["--root", o.root] : []),
      ...(o.runRoot ? ["--runroot", o.runRoot] : []),
      "--storage-driver",
      o.storageDriver,
    ];
  }
}
