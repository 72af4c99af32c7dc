/** `kiln build`, `logs`, `status`, `images` and `tags`: what a user does with images. */
import type { Command } from "commander";
import { buildCommand } from "../build.ts";
import type { CliContext } from "../context.ts";
import { followLogCommand } from "../logs.ts";
import { emit, table } from "../output.ts";

/** Adds the image commands to `program`. */
export function registerImageCommands(program: Command, ctx: CliContext): void {
  program
    .command("build <file>")
    .description("import FILE (a .ts or .js module) and build the Image it exports")
    .option("--export <name>", "the export holding the Image (default: the only Image export, or `default`)")
    .option("--tag <tag>", "point this tag at the built image")
    .option("--force-build", "rebuild every layer")
    .option("--ignore-cache", "rebuild without reading or replacing the cache")
    .option("--no-logs", "do not stream build output")
    .action(async (file: string, opts) => buildCommand(ctx.client(), ctx.json(), file, opts));

  program
    .command("logs <build>")
    .description("print a build's log")
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

  const images = program.command("images").description("list images");
  images
    .command("ls")
    .description("list this workspace's images, newest first")
    .action(async () => {
      const { images: rows } = await ctx
        .client()
        .json<{ images: { id: string; status: string; createdAt: string }[] }>("GET", ["v1", "images"]);
      emit(ctx.json(), rows, () => table([["IMAGE", "STATUS", "CREATED"], ...rows.map((r) => [r.id, r.status, r.createdAt])]));
    });

  const tags = program.command("tags").description("name images");
  tags
    .command("set <name> <image>")
    .option("--public", "anyone can read the tag's badge and status page")
    .action(async (name: string, image: string, opts: { public?: boolean }) => {
      const tag = await ctx.client().json("PUT", ["v1", "tags", name], { json: { imageId: image, public: !!opts.public } });
      emit(ctx.json(), tag, () => `${name} -> ${image}${opts.public ? " (public)" : ""}`);
    });
  tags.command("get <name>").action(async (name: string) => {
    const tag = await ctx.client().json<{ name: string; imageId: string; public: boolean }>("GET", ["v1", "tags", name]);
    emit(ctx.json(), tag, () => `${tag.name} -> ${tag.imageId}${tag.public ? " (public)" : ""}`);
  });
}
