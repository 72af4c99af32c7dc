/** `kiln build`, `logs`, `status`, `images` and `tags`: what a user does with images. */

import type { DeletedImage, ImageView } from "@kiln-build/protocol";
import type { Command } from "commander";
import { resolveTag } from "../../image-server.ts";
import { buildCommand, pickImage } from "../build.ts";
import type { CliContext } from "../context.ts";
import { loadImageModule } from "../load-module.ts";
import { followLogCommand } from "../logs.ts";
import { CliError, EXIT, emit, table } from "../output.ts";

type TagRow = { name: string; imageId: string; public: boolean; updatedAt: string };

/** Adds the image commands to `program`. */
export function registerImageCommands(program: Command, ctx: CliContext): void {
  program
    .command("build <file>")
    .description("load FILE (.ts, .mts, .js or .mjs) and build the Image it exports")
    .option("--export <name>", "the export holding the Image (default: the only Image export, or `default`)")
    .option("--tag <tag>", "point this tag at the built image")
    .option("--force-build", "rebuild every layer")
    .option("--ignore-cache", "rebuild without reading or replacing the cache")
    .option("--no-logs", "do not stream build output")
    .option("--timeout <seconds>", "time limit of each build attempt (60 to 86400 s; default 3600)", parseSeconds)
    .option("--push <ref>", "copy the built image to REF (host/name:tag); repeatable", collect, [])
    .option("--push-secret <name>", "the Kiln secret with the login for the --push targets")
    .option("--label <key=value>", "set a label in the pushed images' config; repeatable", collect, [])
    .option("--source <url>", "org.opencontainers.image.source of pushed images")
    .option("--revision <rev>", "org.opencontainers.image.revision of pushed images (default with --push: git rev-parse HEAD)")
    .option(
      "--platform <list>",
      "build for these platforms, comma-separated (e.g. linux/amd64,linux/arm64): several make a multi-platform image",
    )
    .action(async (file: string, opts) => {
      const g = ctx.globals();
      await buildCommand(ctx.client(), { json: ctx.json(), quiet: g.quiet, color: g.color }, file, opts);
    });

  program
    .command("logs <build-image-or-tag>")
    .description("print a build's log (given a build id, an image id or a tag; a cache hit shows the build of its layers)")
    .option("-f, --follow", "keep printing until the build ends")
    .action(async (build: string, opts: { follow?: boolean }) => followLogCommand(ctx.client(), build, !!opts.follow));

  program
    .command("status <image>")
    .description("show an image's status and layers")
    .action(async (id: string) => {
      const view = await ctx.client().json<{
        id: string;
        status: string;
        buildId: string | null;
        layers: { index: number; status: string; digest: string | null; reference: string | null }[];
      }>("GET", ["v1", "images", id]);
      emit(ctx.json(), view, () =>
        [
          `${view.id}  ${view.status}${view.buildId ? `  build ${view.buildId}` : ""}`,
          table([
            ["LAYER", "STATUS", "DIGEST", "REFERENCE"],
            ...view.layers.map((l) => [String(l.index + 1), l.status, l.digest ?? "-", l.reference ?? "-"]),
          ]),
        ].join("\n"),
      );
    });

  const images = program.command("images").description("list and delete images");
  images
    .command("ls")
    .description("list this workspace's images, newest first")
    .action(async () => {
      const { images: rows } = await ctx
        .client()
        .json<{ images: { id: string; status: string; createdAt: string }[] }>("GET", ["v1", "images"]);
      emit(ctx.json(), rows, () => table([["IMAGE", "STATUS", "CREATED"], ...rows.map((r) => [r.id, r.status, r.createdAt])]));
    });

  images
    .command("rm <image-or-tag...>")
    .description("delete images (by id or tag) and the tags pointing at them; layers other images use stay")
    .action(async (targets: string[]) => removeImages(ctx, targets));

  registerTagCommands(program, ctx);
  registerBuildControl(program, ctx);
}

/** `kiln images rm`: deletes each target in turn, reports every one, fails if any failed. */
async function removeImages(ctx: CliContext, targets: string[]): Promise<void> {
  const client = ctx.client();
  const deleted: DeletedImage[] = [];
  const failed: string[] = [];
  for (const target of targets) {
    try {
      // An image (or multi-platform image) id, else a tag naming one (`app:v1`).
      const imageId = target.startsWith("im-") || target.startsWith("ix-") ? target : await resolveTag(target, client);
      deleted.push(await client.deleteImage(imageId));
    } catch (error) {
      failed.push(`${target}: ${(error as Error).message}`);
    }
  }
  const lines = deleted.map((d) => `deleted ${d.id}${d.tags.length > 0 ? ` (tags ${d.tags.join(", ")})` : ""}`);
  if (failed.length === 0) {
    emit(ctx.json(), { deleted }, () => lines.join("\n"));
    return;
  }
  // One document either way: with --json, the error's details say what was deleted too.
  if (!ctx.json() && lines.length > 0) process.stdout.write(`${lines.join("\n")}\n`);
  throw new CliError(`${failed.length} of ${targets.length} image${targets.length === 1 ? "" : "s"} not deleted.`, {
    details: [...failed, ...(ctx.json() ? lines : [])].join("\n"),
    fix: "An image still building needs `kiln cancel ID` first; `kiln images ls` and `kiln tags ls` list what exists.",
  });
}

function parseSeconds(value: string): number {
  if (!/^\d+$/.test(value)) throw new CliError(`--timeout takes whole seconds, not '${value}'.`, { exitCode: EXIT.usage });
  return Number(value);
}

/** `kiln tags ls|set|get|rm`. */
function registerTagCommands(program: Command, ctx: CliContext): void {
  const tags = program.command("tags").description("name images");
  tags
    .command("ls")
    .description("list the workspace's tags")
    .action(async () => {
      const client = ctx.client();
      const rows: TagRow[] = [];
      // The server pages its answer; follow the cursor so a large workspace is listed whole.
      for (let cursor: string | null = null; ; ) {
        const page: { tags: TagRow[]; nextCursor?: string | null } = await client.json("GET", ["v1", "tags"], {
          query: { cursor: cursor ?? undefined },
        });
        rows.push(...page.tags);
        cursor = page.nextCursor ?? null;
        if (!cursor) break;
      }
      emit(ctx.json(), rows, () =>
        table([["TAG", "IMAGE", "PUBLIC", "UPDATED"], ...rows.map((t) => [t.name, t.imageId, t.public ? "yes" : "no", t.updatedAt])]),
      );
    });
  tags
    .command("set <name> <image>")
    .description("point a tag at an image")
    .option("--public", "anyone can read the tag's badge and status page")
    .action(async (name: string, image: string, opts: { public?: boolean }) => {
      const tag = await ctx.client().json("PUT", ["v1", "tags", name], { json: { imageId: image, public: !!opts.public } });
      emit(ctx.json(), tag, () => `${name} -> ${image}${opts.public ? " (public)" : ""}`);
    });
  tags
    .command("get <name>")
    .description("show the image a tag points at")
    .action(async (name: string) => {
      const tag = await ctx.client().json<TagRow>("GET", ["v1", "tags", name]);
      emit(ctx.json(), tag, () => `${tag.name} -> ${tag.imageId}${tag.public ? " (public)" : ""}`);
    });
  tags
    .command("rm <name>")
    .description("remove a tag (the image stays)")
    .action(async (name: string) => {
      await ctx.client().request("DELETE", ["v1", "tags", name]);
      emit(ctx.json(), { removed: name }, () => `removed tag ${name}`);
    });
}

/** `kiln cancel` and `kiln describe`. */
function registerBuildControl(program: Command, ctx: CliContext): void {
  program
    .command("cancel <build-or-image>")
    .description("cancel a running build (given its id, or the id of an image it builds)")
    .action(async (target: string) => {
      const client = ctx.client();
      const buildId = target.startsWith("im-") ? (await client.json<ImageView>("GET", ["v1", "images", target])).buildId : target;
      if (!buildId) throw new CliError(`Image ${target} has no build to cancel.`, { details: "Every layer came from the cache." });
      const result = await client.json("POST", ["v1", "builds", buildId, "cancel"]);
      emit(ctx.json(), result, () => `cancel requested for build ${buildId}`);
    });
  program
    .command("describe <file>")
    .description("offline: the layers FILE's Image lowers to (Dockerfile lines, context sizes, layer keys)")
    .option("--export <name>", "the export holding the Image (default: the only Image export, or `default`)")
    .action(async (file: string, opts: { export?: string }) => {
      const image = pickImage(await loadImageModule(file), file, opts.export);
      const description = await image.describe();
      const layers = description.layers.map((l, index) => ({
        index,
        key: l.key,
        dockerfileCommands: l.dockerfileCommands,
        context: l.context,
        secrets: l.secrets,
        gpu: l.gpu,
      }));
      emit(ctx.json(), { builderVersion: description.builderVersion, layers }, () => describeText(layers));
    });
}

/** The plan as a reader wants it: one header per layer, then its Dockerfile lines. */
function describeText(
  layers: { index: number; key: string; dockerfileCommands: string[]; context: { sizeBytes: number } | null }[],
): string {
  return layers
    .map((l) => {
      const context = l.context ? `, context ${formatBytes(l.context.sizeBytes)}` : "";
      return [
        `# layer ${l.index + 1}/${layers.length}  key ${l.key.slice(0, 12)}${context}`,
        ...l.dockerfileCommands.map((c) => `  ${c}`),
      ].join("\n");
    })
    .join("\n");
}

function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

// Commander's accumulator for repeatable options.
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
