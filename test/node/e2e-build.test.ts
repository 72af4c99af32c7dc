// End to end on the real stack: the SDK builds a Debian bookworm image (a debootstrap rootfs
// pushed to the built-in registry) through the orchestrator on wrangler dev and a reference
// runner process, with fromDockerfile (multi-stage), aptInstall, a secret, env, workdir,
// addLocalDir(copy) and dockerfileCommands; then buildah pulls the result and runs a command
// in it to prove the files, the package and the environment are there and the secret is not.
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { debianRootfs } from "../../runner/test/helpers/base-images.ts";
import { Image, Secret } from "../../sdk/src/index.ts";
import {
  type Buildah,
  type LocalRunner,
  newWorkspace,
  privateBuildah,
  pushBaseImage,
  requireE2eTools,
  type StackInfo,
  sharedStack,
  startLocalRunner,
  type Tenant,
} from "./e2e-stack.ts";

const SECRET_VALUE = "e2e-secret-value-5d1c9a7e";
let stack: StackInfo;
let tenant: Tenant;
let runner: LocalRunner;
let base: string;
let buildah: Buildah;
let work: string;

beforeAll(async () => {
  requireE2eTools("buildah", "debootstrap");
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "e2e-debian");
  buildah = await privateBuildah();
  work = mkdtempSync(path.join(os.tmpdir(), "kiln-e2e-build-"));
  [runner, base] = await Promise.all([
    startLocalRunner(stack, tenant),
    debianRootfs().then((rootfs) => pushBaseImage(stack, tenant, rootfs, "debian:bookworm")),
  ]);
  await tenant.client.json("PUT", ["v1", "secrets", "e2e-token"], { json: { values: { E2E_TOKEN: SECRET_VALUE } } });
}, 1_200_000);

afterAll(async () => {
  await runner?.stop();
  buildah?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

function write(file: string, text: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

describe("image.build() end to end on a Debian base", { timeout: 1_200_000 }, () => {
  it("builds every kind of layer, and the pulled image has the files, package and env but not the secret", async () => {
    const app = path.join(work, "app");
    write(
      path.join(app, "Dockerfile"),
      [
        // A literal base, not `ARG BASE` + `FROM ${BASE}`: the runner decides TLS for the base
        // pull from the first FROM's text without expanding ARGs (reported to its owner).
        `FROM ${base} AS build`,
        "WORKDIR /src",
        "COPY src/ ./",
        "RUN sed 's/NAME/kiln/' greeting.txt.in > greeting.txt",
        "",
        `FROM ${base}`,
        "COPY --from=build /src/greeting.txt /etc/greeting.txt",
        "",
      ].join("\n"),
    );
    write(path.join(app, "src/greeting.txt.in"), "hello NAME\n");
    write(path.join(work, "data/a.txt"), "data-a\n");
    write(path.join(work, "data/sub/b.txt"), "data-b\n");
    write(path.join(work, "data/debug.log"), "ignored\n");
    write(path.join(work, "extra/extra.txt"), "extra-file\n");

    const image = Image.fromDockerfile(path.join(app, "Dockerfile"), { contextDir: app })
      .aptInstall("hello")
      // The secret is used (its hash is kept, and it is echoed so masking shows) but never stored.
      .runCommands(
        'test -n "$E2E_TOKEN" && printf %s "$E2E_TOKEN" | sha256sum | cut -c1-16 > /etc/secret-hash && echo "token: $E2E_TOKEN"',
        {
          secrets: [Secret.fromName("e2e-token")],
        },
      )
      .env({ GREETING: "hello-kiln" })
      .workdir("/srv/app")
      .addLocalDir(path.join(work, "data"), "/srv/app/data", { copy: true, ignore: ["*.log"] })
      .dockerfileCommands(["COPY extra.txt /opt/extra.txt", "RUN echo from-dockerfile-commands > /opt/dfc.txt"], {
        contextDir: path.join(work, "extra"),
      });

    const built = await image.build({ client: tenant.client, logs: false });
    expect(built.imageId).toMatch(/^im-/);
    expect(built.reference).toBe(`${stack.host}/${tenant.workspace}/layers@${built.digest}`);
    expect(built.uploadedBytes).toBeGreaterThan(0);
    const view = await tenant.client.json<{ status: string; buildId: string; layers: { status: string; digest: string }[] }>("GET", [
      "v1",
      "images",
      built.imageId!,
    ]);
    expect(view.status).toBe("succeeded");
    expect(view.layers).toHaveLength(8);
    expect(view.layers.every((l) => l.status === "succeeded" && /^sha256:/.test(l.digest))).toBe(true);

    // The build log has the apt output and the masked secret line, never the value.
    const log = await allLogText(view.buildId);
    expect(log).toContain("Setting up hello");
    expect(log).toContain("token: ");
    expect(log).not.toContain(SECRET_VALUE);

    const creds = `e2e:${tenant.token}`;
    const container = (await buildah.run("from", "--tls-verify=false", "--creds", creds, `docker://${built.reference}`)).trim();
    const script = [
      'echo "pwd=$(pwd)"',
      'echo "greeting=$GREETING"',
      "cat /etc/greeting.txt",
      "hello",
      "cat data/a.txt data/sub/b.txt",
      "test -e data/debug.log && echo has-log || echo no-log",
      "cat /opt/extra.txt /opt/dfc.txt",
      'echo "secret-hash=$(cat /etc/secret-hash)"',
      'echo "secret-env=${E2E_TOKEN:-unset}"',
      "test -e /src && echo has-build-stage || echo no-build-stage",
      `grep -rlsF '${SECRET_VALUE}' /etc /opt /srv /root /tmp /var /run /usr/local /home && echo secret-found || echo secret-absent`,
    ].join("; ");
    const out = await buildah.run("run", "--isolation", "chroot", container, "--", "sh", "-c", script);
    const expectedHash = createHash("sha256").update(SECRET_VALUE).digest("hex").slice(0, 16);
    expect(out.split("\n")).toEqual(
      expect.arrayContaining([
        "pwd=/srv/app",
        "greeting=hello-kiln",
        "hello kiln",
        "Hello, world!",
        "data-a",
        "data-b",
        "no-log",
        "extra-file",
        "from-dockerfile-commands",
        `secret-hash=${expectedHash}`,
        "secret-env=unset",
        "no-build-stage",
        "secret-absent",
      ]),
    );
    // Nor is it in the image's config or history.
    const inspected = await buildah.run("inspect", "--type", "container", container);
    expect(inspected).not.toContain(SECRET_VALUE);
    expect(inspected).toContain("GREETING=hello-kiln");
  });
});

async function allLogText(buildId: string): Promise<string> {
  let cursor = 0;
  let text = "";
  for (;;) {
    const page = await tenant.client.json<{ chunks: { pos: number; data: string }[]; cursor: number; done: boolean }>(
      "GET",
      ["v1", "builds", buildId, "logs"],
      { query: { cursor } },
    );
    text += page.chunks.map((c) => c.data).join("");
    if (page.done || page.chunks.length === 0) return text;
    cursor = page.cursor;
  }
}
