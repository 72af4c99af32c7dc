// The three build backends produce exactly the command lines their tools expect: flags,
// secret, build args, GPUs, auth, TLS and push; and each recognises its tool's message for
// a failed RUN step. No tool is run here (buildah is exercised for real elsewhere).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BuildahBackend } from "../src/backends/buildah.ts";
import { BuildctlBackend } from "../src/backends/buildctl.ts";
import { DockerBuildxBackend } from "../src/backends/docker-buildx.ts";
import type { BuildRequest } from "../src/backends/types.ts";
import type { GpuDevice } from "../src/gpu.ts";

const gpus: GpuDevice[] = [
  { index: 0, uuid: "GPU-a", name: "NVIDIA H100 80GB HBM3", memoryMiB: 81_559, type: "H100" },
  { index: 3, uuid: "GPU-b", name: "NVIDIA H100 80GB HBM3", memoryMiB: 81_559, type: "H100" },
];

const request: BuildRequest = {
  contextDir: "/srv/kiln-runner/job/layer-1/context",
  dockerfile: "/srv/kiln-runner/job/layer-1/dockerfile/Dockerfile",
  target: "registry.example:5000/ws/layers:abc",
  buildArgs: { PY: "3.12", EMPTY: "" },
  secrets: [{ id: "kiln-env", path: "/dev/shm/kiln-runner-secrets-x/layer-1.env" }],
  stepImages: false,
  gpus,
  authFile: "/dev/shm/kiln-runner-secrets-x/auth-1/config.json",
  pullTlsVerify: true,
  targetInsecure: false,
  pull: "missing",
  metadataFile: "/srv/kiln-runner/job/layer-1/digest",
};

describe("buildah backend", () => {
  const backend = new BuildahBackend({ root: "/var/lib/kiln/storage", runRoot: "/run/kiln/storage" });

  it("builds with bud, chroot isolation and vfs storage by default", () => {
    expect(backend.build(request).argv).toEqual([
      "buildah",
      "--root",
      "/var/lib/kiln/storage",
      "--runroot",
      "/run/kiln/storage",
      "--storage-driver",
      "vfs",
      "bud",
      "--isolation",
      "chroot",
      "--file",
      "/srv/kiln-runner/job/layer-1/dockerfile/Dockerfile",
      "--tag",
      "registry.example:5000/ws/layers:abc",
      "--authfile",
      "/dev/shm/kiln-runner-secrets-x/auth-1/config.json",
      "--tls-verify=true",
      "--pull=missing",
      "--secret",
      "id=kiln-env,src=/dev/shm/kiln-runner-secrets-x/layer-1.env",
      "--build-arg",
      "PY=3.12",
      "--build-arg",
      "EMPTY=",
      "--device",
      "nvidia.com/gpu=0",
      "--device",
      "nvidia.com/gpu=3",
      "/srv/kiln-runner/job/layer-1/context",
    ]);
    expect(backend.runFlags()).toEqual([]);
  });

  it("honours configured isolation, storage driver and binary", () => {
    const custom = new BuildahBackend({ bin: "/opt/buildah", isolation: "oci", storageDriver: "overlay" });
    const argv = custom.build({ ...request, gpus: [], secrets: [], buildArgs: {}, pull: "always", pullTlsVerify: false }).argv;
    expect(argv).toEqual([
      "/opt/buildah",
      "--storage-driver",
      "overlay",
      "bud",
      "--isolation",
      "oci",
      "--file",
      request.dockerfile,
      "--tag",
      request.target,
      "--authfile",
      request.authFile,
      "--tls-verify=false",
      "--pull=always",
      request.contextDir,
    ]);
  });

  it("pushes with a digest file, TLS per the target registry", () => {
    expect(backend.push({ ...request, targetInsecure: true }).argv).toEqual([
      "buildah",
      "--root",
      "/var/lib/kiln/storage",
      "--runroot",
      "/run/kiln/storage",
      "--storage-driver",
      "vfs",
      "push",
      "--authfile",
      request.authFile,
      "--tls-verify=false",
      "--digestfile",
      "/srv/kiln-runner/job/layer-1/digest",
      "registry.example:5000/ws/layers:abc",
      "docker://registry.example:5000/ws/layers:abc",
    ]);
  });

  it("removes images and its own leftover containers", () => {
    expect(backend.remove("r/x:y").argv.slice(-3)).toEqual(["vfs", "rmi", "r/x:y"]);
    expect(backend.cleanup().argv.slice(-2)).toEqual(["rm", "--all"]);
  });

  it("reads the exit code of a failed step from buildah's error line", () => {
    expect(backend.stepExitCode(["STEP 2/2: RUN exit 7", 'Error: building at STEP "RUN exit 7": exit status 7'])).toBe(7);
    expect(backend.stepExitCode(['Error: building at STEP "RUN false": while running runtime: exit status 1'])).toBe(1);
    // The runtime failing to start the step is the machine's failure (retried), not the step's exit code.
    expect(
      backend.stepExitCode([
        "STEP 2/2: RUN echo hi",
        "Close_Fd sealing memfd copy: Device or resource busy",
        'Error: building at STEP "RUN echo hi": exit status 1',
      ]),
    ).toBeNull();
    expect(
      backend.stepExitCode(["Error: creating build container: initializing source docker://x: pinging container registry"]),
    ).toBeNull();
  });
});

describe("buildah chains", () => {
  const backend = new BuildahBackend();

  it("commits every step of a chain build, never from its own cache, with each layer's secret", () => {
    const secrets = [
      { id: "kiln-env-1", path: "/dev/shm/s/layer-1.env" },
      { id: "kiln-env-3", path: "/dev/shm/s/layer-3.env" },
    ];
    const argv = backend.build({ ...request, gpus: [], buildArgs: {}, stepImages: true, secrets }).argv;
    expect(argv).toContain("--layers");
    expect(argv).toContain("--no-cache");
    expect(argv.join(" ")).toContain("--secret id=kiln-env-1,src=/dev/shm/s/layer-1.env --secret id=kiln-env-3,src=/dev/shm/s/layer-3.env");
    expect(backend.build(request).argv).not.toContain("--layers");
  });

  it("reads steps and step images from buildah's output, and nothing else", () => {
    expect(backend.chainProgress("STEP 3/7: RUN make")).toEqual({ step: 3, totalSteps: 7 });
    expect(backend.chainProgress("--> 9cbc3781c5f")).toEqual({ image: "9cbc3781c5f" });
    for (const line of [
      "[1/2] STEP 1/3: FROM x AS a",
      "--> Using cache 9cbc3781c5f",
      "--> 9cbc",
      "--> 9CBC3781C5F",
      "  STEP 1/2: x",
      "COMMIT r/x:y",
      "hello",
    ]) {
      expect(backend.chainProgress(line)).toBeNull();
    }
  });

  it("names step images and prints image configs", () => {
    expect(backend.tag("9cbc3781c5f", "r/x:y").argv.slice(-3)).toEqual(["tag", "9cbc3781c5f", "r/x:y"]);
    expect(backend.imageConfig("9cbc3781c5f").argv.slice(-6)).toEqual([
      "inspect",
      "--type",
      "image",
      "--format",
      "{{.Config}}",
      "9cbc3781c5f",
    ]);
    expect(backend.chains).toBe(true);
    expect(new DockerBuildxBackend().chains).toBe(false);
  });
});

describe("docker buildx backend", () => {
  const backend = new DockerBuildxBackend({ builder: "kiln", buildxConfig: "/root/.docker/buildx" });

  it("builds and pushes in one command, with secrets, device entitlement and a private DOCKER_CONFIG", () => {
    const command = backend.build({ ...request, targetInsecure: true, pull: "always" });
    expect(command.argv).toEqual([
      "docker",
      "buildx",
      "build",
      "--builder",
      "kiln",
      "--progress",
      "plain",
      "--file",
      request.dockerfile,
      "--output",
      "type=image,name=registry.example:5000/ws/layers:abc,push=true,registry.insecure=true",
      "--metadata-file",
      request.metadataFile,
      "--pull",
      "--secret",
      `id=kiln-env,src=${request.secrets[0]!.path}`,
      "--build-arg",
      "PY=3.12",
      "--build-arg",
      "EMPTY=",
      "--allow",
      "device",
      request.contextDir,
    ]);
    expect(command.env).toEqual({ DOCKER_CONFIG: "/dev/shm/kiln-runner-secrets-x/auth-1", BUILDX_CONFIG: "/root/.docker/buildx" });
    expect(backend.push()).toBeNull();
  });

  it("exposes GPUs to RUN steps as CDI devices and recognises BuildKit's step failure", () => {
    expect(backend.runFlags(gpus)).toEqual(["--device=nvidia.com/gpu=0", "--device=nvidia.com/gpu=3"]);
    expect(backend.stepExitCode(['ERROR: failed to solve: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3'])).toBe(
      3,
    );
  });

  it("reads the digest from the metadata file", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-meta-"));
    const file = path.join(dir, "metadata.json");
    await writeFile(file, JSON.stringify({ "containerimage.digest": `sha256:${"a".repeat(64)}`, "image.name": "x" }));
    expect(await backend.digest({ ...request, metadataFile: file })).toBe(`sha256:${"a".repeat(64)}`);
    await writeFile(file, "{}");
    await expect(backend.digest({ ...request, metadataFile: file })).rejects.toThrow(/containerimage.digest/);
    await rm(dir, { recursive: true, force: true });
  });
});

describe("buildctl backend", () => {
  it("drives the dockerfile frontend with local sources and pushes", () => {
    const backend = new BuildctlBackend({ addr: "unix:///run/buildkit/buildkitd.sock" });
    const command = backend.build(request);
    expect(command.argv).toEqual([
      "buildctl",
      "--addr",
      "unix:///run/buildkit/buildkitd.sock",
      "build",
      "--progress",
      "plain",
      "--frontend",
      "dockerfile.v0",
      "--local",
      "context=/srv/kiln-runner/job/layer-1/context",
      "--local",
      "dockerfile=/srv/kiln-runner/job/layer-1/dockerfile",
      "--opt",
      "filename=Dockerfile",
      "--opt",
      "build-arg:PY=3.12",
      "--opt",
      "build-arg:EMPTY=",
      "--secret",
      `id=kiln-env,src=${request.secrets[0]!.path}`,
      "--allow",
      "device",
      "--output",
      "type=image,name=registry.example:5000/ws/layers:abc,push=true",
      "--metadata-file",
      request.metadataFile,
    ]);
    expect(command.env).toEqual({ DOCKER_CONFIG: "/dev/shm/kiln-runner-secrets-x/auth-1" });
    expect(backend.build({ ...request, pull: "always", gpus: [] }).argv).toContain("image-resolve-mode=pull");
    expect(backend.runFlags(gpus)).toEqual(["--device=nvidia.com/gpu=0", "--device=nvidia.com/gpu=3"]);
    expect(backend.push()).toBeNull();
    expect(backend.cleanup()).toBeNull();
  });
});

describe("build targets", () => {
  it("every backend builds only the requested stage", () => {
    const staged = { ...request, stage: "builder" };
    const buildah = new BuildahBackend().build(staged).argv;
    expect(buildah.slice(buildah.indexOf("--target"), buildah.indexOf("--target") + 2)).toEqual(["--target", "builder"]);
    const buildx = new DockerBuildxBackend({ builder: "kiln" }).build(staged).argv;
    expect(buildx.slice(buildx.indexOf("--target"), buildx.indexOf("--target") + 2)).toEqual(["--target", "builder"]);
    expect(new BuildctlBackend({ addr: "unix:///run/buildkit/buildkitd.sock" }).build(staged).argv).toContain("target=builder");
    expect(new BuildahBackend().build(request).argv).not.toContain("--target");
  });
});
