// Real builds on a Debian bookworm base made with debootstrap: an `aptInstall` against the
// machine's Debian mirror, then `runFunction` layers executed inside the image with
// python and with node (arguments, kwargs, globals, secrets, KILN_IMAGE_KEY), leaving only
// what the functions wrote.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Image, Secret } from "../../sdk/src/index.ts";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { imageConfig, imageContents, registryDigest } from "./helpers/inspect.ts";
import { dispatch, jobFromImage } from "./helpers/jobs.ts";

const FN_TOKEN = "function-secret-token-3b9e";
const harness = useBuildHarness({ base: "debian" });

// Runs inside the image with node: only its arguments, globals and `require` are available.
function writeMarker(file: string, text: string, options: { flag: boolean }): void {
  const fs = require("node:fs") as typeof import("node:fs");
  fs.writeFileSync(
    file,
    [text, GREETING, process.env.KILN_IMAGE_KEY, JSON.stringify(options), String(process.env.FN_TOKEN?.length)].join("|"),
  );
}
declare const GREETING: string;

describe("a Debian image with aptInstall and runFunction", () => {
  it("installs packages with apt and runs python and node functions inside the image", async () => {
    const { orchestrator } = harness;
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-fn-"));
    const module = path.join(dir, "build_steps.py");
    await writeFile(
      module,
      [
        "import os, sys",
        "def write_marker(path, text, suffix='?'):",
        "    with open(path, 'w') as f:",
        "        f.write('|'.join([text, suffix, str(MULTIPLIER * 2), os.environ['KILN_IMAGE_KEY'], sys.version.split()[0][:1], __name__]))",
        "",
      ].join("\n"),
    );
    const image = Image.fromRegistry(harness.baseRef)
      .aptInstall("hello", "python3-minimal", "nodejs")
      .runCommands("ln -s /usr/bin/python3 /usr/local/bin/python && hello > /hello.txt")
      .runFunction(
        { file: module, name: "write_marker" },
        { args: ["/py-marker", "from-python"], kwargs: { suffix: "!" }, globals: { MULTIPLIER: 21 } },
      )
      .runFunction(writeMarker, {
        args: ["/js-marker", "from-node"],
        kwargs: { flag: true },
        globals: { GREETING: "hi" },
        secrets: [Secret.fromDict({ FN_TOKEN })],
      });
    const job = await jobFromImage(image, {
      orchestrator,
      registryHost: harness.registry.host,
      secrets: { [Secret.fromDict({ FN_TOKEN }).ref]: { FN_TOKEN } },
    });
    expect(job.layers[3]!.buildFunction?.language).toBe("python");
    expect(job.layers[4]!.buildFunction?.language).toBe("javascript");

    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    const final = await orchestrator.final(840_000);
    if (final.type === "failed") throw new Error(`build failed: ${final.message}\n${final.logTail.join("\n")}`);
    for (const event of orchestrator.ofType("layer_succeeded")) expect(event.digest).toBe(await registryDigest(event.reference));

    const last = job.layers[4]!;
    const files = (await imageContents(last.target)).files;
    expect(files.get("/hello.txt")?.data.toString()).toBe("Hello, world!\n");
    expect(files.has("/usr/bin/hello")).toBe(true);
    expect(files.get("/py-marker")?.data.toString()).toBe(`from-python|!|42|${job.layers[3]!.key}|3|kiln_build_module`);
    expect(files.get("/js-marker")?.data.toString()).toBe(`from-node|hi|${last.key}|{"flag":true}|${FN_TOKEN.length}`);
    // The function harness was mounted, not copied; the secret is nowhere in the image.
    expect([...files.keys()].filter((p) => p.includes("kiln-function") || p.startsWith("/run/kiln/"))).toEqual([]);
    const config = await imageConfig(last.target);
    expect(config.text).not.toContain(FN_TOKEN);
    expect(config.text).not.toContain("KILN_IMAGE_KEY");
    expect(orchestrator.logText()).not.toContain(FN_TOKEN);
    // The image's SBOM (decision 0024) names what apt installed, read from the image's real dpkg status.
    const [report] = orchestrator.sboms;
    expect(report).toMatchObject({ layerKey: last.key, digest: orchestrator.ofType("layer_succeeded").at(-1)!.digest });
    const debs = (JSON.parse(report!.sbom!).components as { name: string; purl: string }[]).filter((c) => c.purl.startsWith("pkg:deb/"));
    expect(debs.map((c) => c.name)).toEqual(expect.arrayContaining(["hello", "python3-minimal", "nodejs", "libc6", "dpkg"]));
    await rm(dir, { recursive: true, force: true });
  }, 900_000);
});
