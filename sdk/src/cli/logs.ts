/**
 * `kiln logs BUILD|IMAGE|TAG [--follow]`: prints a build's log, resuming across dropped
 * connections. An image (or a tag's image) shows its own build; a cache hit, which has no
 * build of its own, shows the builds that produced its layers.
 */
import type { ImageView } from "@kiln-build/protocol";
import { followLog, LineAssembler } from "../build-logs.ts";
import type { KilnClient } from "../client.ts";
import { CliError, EXIT } from "./output.ts";

/** The builds whose logs `target` (a build id, an image id or a tag) stands for, in order. */
export async function resolveLogTarget(client: KilnClient, target: string): Promise<string[]> {
  if (target.startsWith("bd-")) return [target];
  let imageId = target;
  if (!target.startsWith("im-")) {
    const response = await client.request("GET", ["v1", "tags", target], { accept: [404] });
    if (response.status === 404) {
      await response.body?.cancel();
      throw new CliError(`'${target}' is not a build id (bd-...), an image id (im-...) or a tag.`, { exitCode: EXIT.notFound });
    }
    imageId = ((await response.json()) as { imageId: string }).imageId;
  }
  const view = await client.json<ImageView>("GET", ["v1", "images", imageId]);
  if (view.buildId) return [view.buildId];
  const builds = [...new Set(view.layers.flatMap((l) => (l.buildId ? [l.buildId] : [])))];
  if (builds.length === 0) throw new CliError(`Image ${imageId} has no build log.`, { details: "None of its layers records a build." });
  process.stderr.write(
    `${imageId} was served from the cache; showing the build${builds.length > 1 ? "s" : ""} that produced its layers: ${builds.join(", ")}\n`,
  );
  return builds;
}

/** Prints the log of `target`'s build(s); without --follow, stops at what exists now. */
export async function followLogCommand(client: KilnClient, target: string, follow: boolean): Promise<void> {
  for (const buildId of await resolveLogTarget(client, target)) await printLog(client, buildId, follow);
}

async function printLog(client: KilnClient, buildId: string, follow: boolean): Promise<void> {
  const lines = new LineAssembler();
  if (follow) {
    for await (const chunk of followLog(client, buildId)) for (const line of lines.push(chunk)) process.stdout.write(`${line}\n`);
  } else {
    let cursor = 0;
    for (;;) {
      const page = await client.json<{ chunks: Parameters<LineAssembler["push"]>[0][]; cursor: number }>(
        "GET",
        ["v1", "builds", buildId, "logs"],
        { query: { cursor } },
      );
      for (const chunk of page.chunks) for (const line of lines.push(chunk)) process.stdout.write(`${line}\n`);
      if (page.chunks.length === 0 || page.cursor === cursor) break;
      cursor = page.cursor;
    }
  }
  for (const rest of lines.flush()) process.stdout.write(`${rest.line}\n`);
}
