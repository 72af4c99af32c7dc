/**
 * The `kiln` CLI (commander). Every command talks to the server through `KilnClient`;
 * `--server` / `--token` override KILN_SERVER_URL / KILN_TOKEN.
 */
import { Command, CommanderError, Option } from "commander";
import { KilnClient } from "../client.ts";
import { buildCommand } from "./build.ts";
import { doctorCommand } from "./doctor.ts";
import { followLogCommand } from "./logs.ts";
import { CliError, EXIT, emit, printError, table, toCliError } from "./output.ts";

type Globals = { server?: string; token?: string; json?: boolean };

/** Runs the CLI on `argv` (process.argv shape); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command("kiln")
    .description("Build container images on Kiln from TypeScript image definitions.")
    .option("--server <url>", "Kiln server URL (default: KILN_SERVER_URL or http://127.0.0.1:8787)")
    .option("--token <token>", "API token (default: KILN_TOKEN)")
    .option("--json", "print machine-readable JSON")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const client = () => {
    const g = program.opts<Globals>();
    return new KilnClient({ ...(g.server ? { serverUrl: g.server } : {}), ...(g.token ? { token: g.token } : {}) });
  };
  const json = () => !!program.opts<Globals>().json;
  // A command that reports its own failures (doctor) sets this instead of throwing.
  let exitCode: number = EXIT.ok;

  program
    .command("build <file>")
    .description("import FILE (a .ts or .js module) and build the Image it exports")
    .option("--export <name>", "the export holding the Image (default: the only Image export, or `default`)")
    .option("--tag <tag>", "point this tag at the built image")
    .option("--force-build", "rebuild every layer")
    .option("--ignore-cache", "rebuild without reading or replacing the cache")
    .option("--no-logs", "do not stream build output")
    .action(async (file: string, opts) => buildCommand(client(), json(), file, opts));

  program
    .command("logs <build>")
    .description("print a build's log")
    .option("-f, --follow", "keep printing until the build ends")
    .action(async (build: string, opts: { follow?: boolean }) => followLogCommand(client(), build, !!opts.follow));

  program
    .command("status <image>")
    .description("show an image's status and layers")
    .action(async (id: string) => {
      const view = await client().json<{
        id: string;
        status: string;
        buildId: string | null;
        layers: { index: number; status: string; digest: string | null; reference: string | null }[];
      }>("GET", ["v1", "images", id]);
      emit(json(), view, () =>
        [
          `${view.id}  ${view.status}${view.buildId ? `  build ${view.buildId}` : ""}`,
          table([
            ["LAYER", "STATUS", "DIGEST", "REFERENCE"],
            ...view.layers.map((l) => [String(l.index + 1), l.status, l.digest ?? "-", l.reference ?? "-"]),
          ]),
        ].join("\n"),
      );
    });

  const images = program.command("images").description("list images");
  images
    .command("ls")
    .description("list this workspace's images, newest first")
    .action(async () => {
      const { images: rows } = await client().json<{ images: { id: string; status: string; createdAt: string }[] }>("GET", [
        "v1",
        "images",
      ]);
      emit(json(), rows, () => table([["IMAGE", "STATUS", "CREATED"], ...rows.map((r) => [r.id, r.status, r.createdAt])]));
    });

  const tags = program.command("tags").description("name images");
  tags
    .command("set <name> <image>")
    .option("--public", "anyone can read the tag's badge and status page")
    .action(async (name: string, image: string, opts: { public?: boolean }) => {
      const tag = await client().json("PUT", ["v1", "tags", name], { json: { imageId: image, public: !!opts.public } });
      emit(json(), tag, () => `${name} -> ${image}${opts.public ? " (public)" : ""}`);
    });
  tags.command("get <name>").action(async (name: string) => {
    const tag = await client().json<{ name: string; imageId: string; public: boolean }>("GET", ["v1", "tags", name]);
    emit(json(), tag, () => `${tag.name} -> ${tag.imageId}${tag.public ? " (public)" : ""}`);
  });

  const secrets = program.command("secret").description("manage secrets (values are write-only)");
  secrets
    .command("create <name> <pairs...>")
    .description("create or replace a secret from KEY=VALUE pairs")
    .action(async (name: string, pairs: string[]) => {
      const values: Record<string, string> = {};
      for (const pair of pairs) {
        const eq = pair.indexOf("=");
        if (eq <= 0)
          throw new CliError(`'${pair}' is not KEY=VALUE.`, { fix: "Pass pairs like GITHUB_TOKEN=ghp_...", exitCode: EXIT.usage });
        values[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      const secret = await client().json<{ name: string; keys: string[] }>("PUT", ["v1", "secrets", name], { json: { values } });
      emit(json(), secret, () => `secret ${secret.name}: ${secret.keys.join(", ")}`);
    });
  secrets.command("list").action(async () => {
    const { secrets: rows } = await client().json<{ secrets: { name: string; keys: string[] }[] }>("GET", ["v1", "secrets"]);
    emit(json(), rows, () => table([["NAME", "KEYS"], ...rows.map((r) => [r.name, r.keys.join(",")])]));
  });
  secrets.command("delete <name>").action(async (name: string) => {
    await client().request("DELETE", ["v1", "secrets", name]);
    emit(json(), { deleted: name }, () => `deleted secret ${name}`);
  });

  program
    .command("token")
    .description("manage API tokens")
    .command("create <name>")
    .addOption(new Option("--scope <scope...>", "scopes to grant").default(["images:read", "images:write"]))
    .action(async (name: string, opts: { scope: string[] }) => {
      const created = await client().json<{ id: string; token: string; scopes: string[] }>("POST", ["v1", "tokens"], {
        json: { name, kind: "api", scopes: opts.scope },
      });
      emit(json(), created, () => `${created.token}\n(token ${created.id}, scopes ${created.scopes.join(",")}; shown once, store it now)`);
    });

  const fleet = program.command("fleet").description("manage runner fleets");
  fleet
    .command("add <name> <url>")
    .option("--gpu <types...>", "GPU types the fleet's machines have", [])
    .option("--max-builds <n>", "maximum concurrent builds", "4")
    .option("--signing-secret <secret>", "Standard Webhooks secret (default: generated and printed once)")
    .action(async (name: string, url: string, opts: { gpu: string[]; maxBuilds: string; signingSecret?: string }) => {
      const created = await client().json<{ id: string; signingSecret?: string }>("POST", ["v1", "fleets"], {
        json: {
          name,
          url,
          gpuTypes: opts.gpu,
          maxConcurrentBuilds: Number(opts.maxBuilds),
          ...(opts.signingSecret ? { signingSecret: opts.signingSecret } : {}),
        },
      });
      emit(
        json(),
        created,
        () => `fleet ${created.id}${created.signingSecret ? `\nsigning secret (shown once): ${created.signingSecret}` : ""}`,
      );
    });
  fleet.command("ls").action(async () => {
    const { fleets } = await client().json<{
      fleets: { id: string; name: string; url: string; gpuTypes: string[]; maxConcurrentBuilds: number }[];
    }>("GET", ["v1", "fleets"]);
    emit(json(), fleets, () =>
      table([
        ["FLEET", "NAME", "URL", "GPUS", "MAX"],
        ...fleets.map((f) => [f.id, f.name, f.url, f.gpuTypes.join(",") || "-", String(f.maxConcurrentBuilds)]),
      ]),
    );
  });

  program
    .command("badge <tag>")
    .description("print the Markdown for a public tag's status badge")
    .requiredOption("--workspace <name>", "the workspace the tag belongs to")
    .action((tag: string, opts: { workspace: string }) => {
      const base = client().serverUrl;
      const path = `${encodeURIComponent(opts.workspace)}/${encodeURIComponent(tag)}`;
      const markdown = `[![kiln: ${tag}](${base}/badges/${path}.svg)](${base}/images/by-tag/${path})`;
      emit(json(), { markdown }, () => markdown);
    });

  program
    .command("doctor")
    .description("check a deployment: reachable, migrations current, secrets, fleets reachable and signing, registry writable")
    .option("--workspace <name>", "workspace whose registry namespace the write check uses (default: the first one, for admin tokens)")
    .action(async (opts: { workspace?: string }) => {
      const g = program.opts<Globals>();
      exitCode = await doctorCommand(
        {
          ...(g.server ? { serverUrl: g.server } : {}),
          ...(g.token ? { token: g.token } : {}),
          ...(opts.workspace ? { workspace: opts.workspace } : {}),
        },
        json(),
      );
    });

  // `kiln logs BUILD | head`: a closed pipe ends the output, it is not a failure.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(EXIT.ok);
    throw error;
  });
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const cli = toCliError(error);
    printError(cli);
    return cli.exitCode;
  }
}
