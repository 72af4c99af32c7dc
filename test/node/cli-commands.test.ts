// The `kiln` CLI against the real local stack, one process per command as a user runs it:
// login and profiles, every workspace and admin command with --json, errors as JSON and
// field by field, doctor without a token, describe offline, completion scripts.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { KILN_VERSION } from "@kiln-build/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import {
  type LocalRunner,
  newWorkspace,
  pushBaseImage,
  requireE2eTools,
  type StackInfo,
  sharedStack,
  startLocalRunner,
  type Tenant,
} from "./e2e-stack.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const KILN = path.join(ROOT, "sdk/dist/cli/bin.js");
let stack: StackInfo;
let alpha: Tenant;
let beta: Tenant;
let home: string;
let config: string;

type Result = { code: number; stdout: string; stderr: string };

/** Runs `kiln ...` with a config file of its own and no credentials in the environment unless given. */
function kiln(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): Promise<Result> {
  const env: NodeJS.ProcessEnv = { ...process.env, KILN_CONFIG: config, NO_COLOR: "1", ...options.env };
  for (const name of ["KILN_TOKEN", "KILN_SERVER_URL", "KILN_PROFILE"]) if (!options.env?.[name]) delete env[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN, ...args], { cwd: home, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.stdin ?? "");
  });
}

/** `kiln --json ...` that must succeed; its parsed stdout. */
async function json<T = unknown>(args: string[], options?: Parameters<typeof kiln>[1]): Promise<T> {
  const result = await kiln(["--json", ...args], options);
  if (result.code !== 0) throw new Error(`kiln ${args.join(" ")} exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
  return JSON.parse(result.stdout) as T;
}

/** Credentials as flags, for commands run before any login. */
const as = (tenant: Tenant) => ["--server", stack.url, "--token", tenant.token];

beforeAll(async () => {
  stack = await sharedStack();
  [alpha, beta] = await Promise.all([newWorkspace(stack, "cli-a"), newWorkspace(stack, "cli-b")]);
  home = mkdtempSync(path.join(os.tmpdir(), "kiln-cli-"));
  config = path.join(home, "config", "kiln", "config.toml");
}, 300_000);

afterAll(() => {
  if (home) rmSync(home, { recursive: true, force: true });
});

describe("login and profiles", () => {
  it("logs in from stdin, stores the profile 0600, switches profiles and logs out", async () => {
    const first = await json<{ profile: string; workspace: { name: string } }>(["login", "--server", stack.url], {
      stdin: `${alpha.token}\n`,
    });
    expect(first).toMatchObject({ profile: "default", workspace: { name: alpha.workspace } });
    expect(statSync(config).mode & 0o777).toBe(0o600);
    await json(["--profile", "beta", "login", "--server", stack.url], { stdin: beta.token });

    // login activates the profile it wrote; --profile and KILN_PROFILE pick another; env credentials win over both.
    expect((await json<{ workspace: { name: string } }>(["whoami"])).workspace.name).toBe(beta.workspace);
    expect((await json<{ workspace: { name: string } }>(["--profile", "default", "whoami"])).workspace.name).toBe(alpha.workspace);
    expect((await json<{ workspace: { name: string } }>(["whoami"], { env: { KILN_PROFILE: "default" } })).workspace.name).toBe(
      alpha.workspace,
    );
    await json(["profile", "use", "default"]);
    expect((await json<{ workspace: { name: string } }>(["whoami"])).workspace.name).toBe(alpha.workspace);
    const profiles = await json<{ name: string; active: boolean }[]>(["profile", "ls"]);
    expect(profiles.map((p) => [p.name, p.active])).toEqual([
      ["default", true],
      ["beta", false],
    ]);

    await json(["--profile", "beta", "logout"]);
    const missing = await kiln(["--profile", "beta", "whoami"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("No profile named 'beta'");
  });

  it("refuses a bad token at login and stores nothing", async () => {
    const result = await kiln(["--profile", "bad", "login", "--server", stack.url], { stdin: "kiln_api_not-a-real-token" });
    expect(result.code).toBe(4);
    expect(result.stderr).toContain("kiln login");
    expect((await json<{ name: string }[]>(["profile", "ls"])).map((p) => p.name)).not.toContain("bad");
  });
});

describe("workspace commands with --json", { timeout: 120_000 }, () => {
  it("tokens: create, ls, revoke", async () => {
    const created = await json<{ id: string; token: string }>([...as(alpha), "token", "create", "ci", "--scope", "images:read"]);
    expect(created.token).toMatch(/^kiln_/);
    const listed = await json<{ id: string; revokedAt: string | null }[]>([...as(alpha), "token", "ls"]);
    expect(listed.find((t) => t.id === created.id)?.revokedAt).toBeNull();
    await json([...as(alpha), "token", "revoke", created.id]);
    const after = await json<{ id: string; revokedAt: string | null }[]>([...as(alpha), "token", "ls"]);
    expect(after.find((t) => t.id === created.id)?.revokedAt).not.toBeNull();
    expect((await kiln(["--server", stack.url, "--token", created.token, "whoami"])).code).toBe(4);
  });

  it("secrets: from arguments, from a file and from stdin; values never printed", async () => {
    const file = path.join(home, "secret.env");
    writeFileSync(file, "# comment\nexport API_KEY='from-file-value'\nOTHER=2\n");
    expect(await json<{ keys: string[] }>([...as(alpha), "secret", "create", "filed", "--from-file", file])).toMatchObject({
      keys: ["API_KEY", "OTHER"],
    });
    expect(
      await json<{ keys: string[] }>([...as(alpha), "secret", "create", "piped", "--from-file", "-"], { stdin: "TOKEN=from-stdin\n" }),
    ).toMatchObject({ keys: ["TOKEN"] });
    await json([...as(alpha), "secret", "create", "inline", "A=1"]);
    const listed = await kiln([...as(alpha), "--json", "secret", "ls"]);
    expect(listed.stdout).not.toContain("from-file-value");
    expect(JSON.parse(listed.stdout).map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(["filed", "piped", "inline"]));
    await json([...as(alpha), "secret", "delete", "inline"]);
  });

  it("fleets: add, ls, disable, enable, rotate-secret, rm", async () => {
    const fleet = await json<{ id: string; signingSecret: string }>([
      ...as(alpha),
      "fleet",
      "add",
      "gpu",
      "https://runner.example.com/v1/jobs",
    ]);
    expect(fleet.signingSecret).toMatch(/^whsec_/);
    expect((await json<{ disabledAt: string | null }>([...as(alpha), "fleet", "disable", fleet.id])).disabledAt).not.toBeNull();
    expect((await json<{ id: string }[]>([...as(alpha), "fleet", "ls"])).map((f) => f.id)).toContain(fleet.id);
    expect((await json<{ disabledAt: string | null }>([...as(alpha), "fleet", "enable", fleet.id])).disabledAt).toBeNull();
    // Trusting a fleet with secrets needs fleets:admin, which this workspace token lacks; untrusting needs only fleets:write.
    expect((await kiln([...as(alpha), "fleet", "trust", fleet.id])).code).toBe(4);
    expect((await json<{ trustedWithSecrets: boolean }>([...as(alpha), "fleet", "untrust", fleet.id])).trustedWithSecrets).toBe(false);
    const rotated = await json<{ signingSecret: string }>([...as(alpha), "fleet", "rotate-secret", fleet.id]);
    expect(rotated.signingSecret).toMatch(/^whsec_/);
    expect(rotated.signingSecret).not.toBe(fleet.signingSecret);
    await json([...as(alpha), "fleet", "rm", fleet.id]);
    expect((await json<{ id: string }[]>([...as(alpha), "fleet", "ls"])).map((f) => f.id)).not.toContain(fleet.id);
  });

  it("admin: workspace create and ls", async () => {
    const admin = ["--server", stack.url, "--token", stack.adminToken];
    const name = `cli-ws-${Date.now().toString(36)}`;
    expect(await json<{ name: string }>([...admin, "workspace", "create", name])).toMatchObject({ name });
    expect((await json<{ name: string }[]>([...admin, "workspace", "ls"])).map((w) => w.name)).toContain(name);
  });

  it("repo visibility: public and back to private", async () => {
    const repository = `${alpha.workspace}/layers`;
    expect(await json([...as(alpha), "repo", "visibility", repository, "public"])).toMatchObject({ public: true });
    expect(await json([...as(alpha), "repo", "visibility", repository, "private"])).toMatchObject({ public: false });
  });
});

describe("errors", () => {
  it("refuses a bad number before any request, with the usage exit code", async () => {
    const result = await kiln([...as(alpha), "fleet", "add", "x", "https://a.example.com", "--max-builds", "abc"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("expected a whole number of at least 1, got 'abc'");
  });

  it("prints the server's validation details field by field, and with --json as one JSON object on stdout", async () => {
    const text = await kiln([...as(alpha), "fleet", "add", "x", "not a url"]);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/^\s+url: /m);
    const machine = await kiln([...as(alpha), "--json", "fleet", "add", "x", "not a url"]);
    expect(machine.code).toBe(1);
    const body = JSON.parse(machine.stdout) as { error: { message: string; details: string; exitCode: number } };
    expect(body.error.exitCode).toBe(1);
    expect(body.error.details).toMatch(/url: /);
  });

  it("a 404 with --json is JSON with exit code 5; an unreachable server is exit 6 with a deployed-server hint", async () => {
    const missing = await kiln([...as(alpha), "--json", "tags", "get", "nope"]);
    expect(missing.code).toBe(5);
    expect(JSON.parse(missing.stdout).error.exitCode).toBe(5);
    const unreachable = await kiln(["--server", "http://kiln.invalid:1", "--token", "x", "whoami"]);
    expect(unreachable.code).toBe(6);
    expect(unreachable.stderr).not.toContain("npm start");
  });

  it("doctor without a token fails with the auth exit code and says how to log in", async () => {
    // A config file of its own: the profiles logged in above would give doctor a token.
    const result = await kiln(["--server", stack.url, "doctor"], { env: { KILN_CONFIG: path.join(home, "empty.toml") } });
    expect(result.code).toBe(4);
    expect(result.stdout + result.stderr).toContain("kiln login");
  });
});

describe("offline commands", () => {
  it("--version prints the package version", async () => {
    expect((await kiln(["--version"])).stdout.trim()).toBe(KILN_VERSION);
  });

  it("describe FILE prints the plan without a server", async () => {
    const file = path.join(home, "image.ts");
    const sdk = pathToFileURL(path.join(ROOT, "sdk/dist/index.js")).href;
    writeFileSync(
      file,
      `import { Image } from ${JSON.stringify(sdk)};\nexport default Image.debianSlim().aptInstall("git").env({ A: "1" });\n`,
    );
    const plan = await json<{ layers: { key: string; dockerfileCommands: string[] }[] }>(["describe", file]);
    expect(plan.layers).toHaveLength(3);
    expect(plan.layers[1]!.dockerfileCommands.join("\n")).toContain("apt-get install");
    const text = await kiln(["describe", file]);
    expect(text.stdout).toContain("# layer 2/3");
  });

  it("completion scripts complete commands and options in bash, and exist for zsh and fish", async () => {
    const bash = await kiln(["completion", "bash"]);
    writeFileSync(path.join(home, "kiln.bash"), bash.stdout);
    const complete = (line: string) =>
      new Promise<string>((resolve) => {
        const words = line.split(" ");
        const script = `source kiln.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _kiln; echo "\${COMPREPLY[*]}"`;
        const child = spawn("bash", ["-c", script], { cwd: home });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.on("close", () => resolve(out.trim()));
      });
    expect(await complete("kiln fl")).toBe("fleet");
    expect((await complete("kiln fleet ")).split(" ")).toEqual(expect.arrayContaining(["add", "disable", "rotate-secret", "rm"]));
    expect(await complete("kiln fleet add --max")).toBe("--max-builds");
    expect((await kiln(["completion", "zsh"])).stdout).toContain("bashcompinit");
    expect((await kiln(["completion", "fish"])).stdout).toContain("complete -c kiln");
    expect((await kiln(["completion", "tcsh"])).code).toBe(2);
  });
});

describe("images, tags and cancel", { timeout: 600_000 }, () => {
  let base: string;
  let runner: LocalRunner;
  let work: string;

  beforeAll(async () => {
    requireE2eTools("buildah", "busybox");
    work = mkdtempSync(path.join(os.tmpdir(), "kiln-cli-images-"));
    base = await busyboxRootfs().then((rootfs) => pushBaseImage(stack, beta, rootfs, "busybox:1"));
  }, 600_000);

  afterAll(async () => {
    await runner?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 120_000);

  /** A module exporting a busybox image with the given RUN step. */
  const moduleWith = (name: string, command: string) => {
    const file = path.join(work, `${name}.ts`);
    const sdk = pathToFileURL(path.join(ROOT, "sdk/dist/index.js")).href;
    writeFileSync(
      file,
      `import { Image } from ${JSON.stringify(sdk)};\nexport default Image.fromRegistry(${JSON.stringify(base)}).runCommands(${JSON.stringify(command)});\n`,
    );
    return file;
  };

  it("a build no fleet can take fails as infrastructure, not as the user's step", async () => {
    // In workspace alpha, which has no fleet: a failure is remembered for its layers for a minute,
    // and beta's later builds share this image's root layer.
    const result = await kiln([...as(alpha), "build", moduleWith("nofleet", `echo ${Date.now()}`), "--no-logs"]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain("infrastructure");
    expect(result.stderr).not.toContain("Fix the failing step");
  });

  it("ls, tags set/ls/get/rm and cancel of a running build", async () => {
    runner = await startLocalRunner(stack, beta);
    const slow = kiln([...as(beta), "--json", "build", moduleWith("slow", `sleep 120 # ${Date.now()}`), "--no-logs"]);
    let imageId: string | undefined;
    let seen: unknown = null;
    for (let i = 0; i < 120 && !imageId; i++) {
      const images = await json<{ id: string; status: string }[]>([...as(beta), "images", "ls"]);
      seen = images;
      imageId = images.find((im) => im.status === "building" || im.status === "queued")?.id;
      if (!imageId) await sleep(500);
    }
    expect(imageId, `images seen: ${JSON.stringify(seen)}`).toBeDefined();
    await json([...as(beta), "tags", "set", "slow", imageId!]);
    expect((await json<{ name: string; imageId: string }[]>([...as(beta), "tags", "ls"])).find((t) => t.name === "slow")?.imageId).toBe(
      imageId,
    );
    expect(await json([...as(beta), "tags", "get", "slow"])).toMatchObject({ imageId });

    await json([...as(beta), "cancel", imageId!]);
    const ended = await slow;
    expect(ended.code).toBe(3);
    expect(JSON.parse(ended.stdout).error.details).toContain("cancelled");

    await json([...as(beta), "tags", "rm", "slow"]);
    expect((await kiln([...as(beta), "tags", "get", "slow"])).code).toBe(5);
  });
});
