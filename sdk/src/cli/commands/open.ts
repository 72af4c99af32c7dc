/**
 * `kiln open [IMAGE_OR_TAG]`: opens the workspace view, or one image's page, in a browser.
 * The CLI asks the server for a one-time signed link (`POST /v1/workspaces/current/page-links`)
 * and hands only that to the browser: the API token never leaves the CLI (decision 0021).
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { KilnClient } from "../../client.ts";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, emit } from "../output.ts";

/** What the server answers. */
type PageLink = { url: string; expiresAt: string; workspace: string };

/** A command that opens a URL: the program and the arguments before the URL. */
export type BrowserOpener = { command: string; args: string[] };

/**
 * The browser opener for this machine (pure given its inputs): `$BROWSER` when set, else
 * `open` on macOS, `xdg-open` elsewhere on Unix, `explorer.exe` on Windows; null when none
 * is installed. `exists` says whether a program is on the PATH.
 */
export function browserOpener(
  platform: NodeJS.Platform,
  env: NodeJS.ProcessEnv,
  exists: (program: string) => boolean,
): BrowserOpener | null {
  const configured = env.BROWSER?.split(":")[0]?.trim();
  if (configured) return exists(configured) ? { command: configured, args: [] } : null;
  const program = platform === "darwin" ? "open" : platform === "win32" ? "explorer.exe" : "xdg-open";
  return exists(program) ? { command: program, args: [] } : null;
}

/** Whether `program` is an executable file, by path or on `PATH`. */
export function onPath(program: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const candidates = program.includes(path.sep) ? [program] : (env.PATH ?? "").split(path.delimiter).map((dir) => path.join(dir, program));
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Mints the link for `target` (nothing: the workspace view; an image id; a tag) and says whether the tag is public. */
export async function pageLinkFor(client: KilnClient, target: string | undefined): Promise<PageLink & { publicUrl: string | null }> {
  let imageId: string | undefined;
  let publicTag: string | null = null;
  if (target?.startsWith("im-")) imageId = target;
  else if (target !== undefined) {
    const response = await client.request("GET", ["v1", "tags", target], { accept: [404] });
    if (response.status === 404) {
      await response.body?.cancel();
      throw new CliError(`'${target}' is not an image id (im-...) or a tag of this workspace.`, { exitCode: EXIT.notFound });
    }
    const tag = (await response.json()) as { imageId: string; public: boolean };
    imageId = tag.imageId;
    if (tag.public) publicTag = target;
  }
  const link = await client.json<PageLink>("POST", ["v1", "workspaces", "current", "page-links"], { json: imageId ? { imageId } : {} });
  const publicUrl =
    publicTag === null ? null : `${client.serverUrl}/images/by-tag/${encodeURIComponent(link.workspace)}/${encodeURIComponent(publicTag)}`;
  return { ...link, publicUrl };
}

/** Adds `kiln open` to `program`. */
export function registerOpenCommand(program: Command, ctx: CliContext): void {
  program
    .command("open [image-or-tag]")
    .description("open the workspace's builds (or an image's page) in a browser, through a one-time link")
    .option("--print", "only print the link; do not start a browser")
    .action(async (target: string | undefined, opts: { print?: boolean }) => {
      const link = await pageLinkFor(ctx.client(), target);
      const opener = opts.print || ctx.json() || !process.stdout.isTTY ? null : browserOpener(process.platform, process.env, onPath);
      if (opener) {
        const child = spawn(opener.command, [...opener.args, link.url], { detached: true, stdio: "ignore" });
        child.on("error", () => undefined);
        child.unref();
      }
      emit(ctx.json(), { ...link, opened: opener !== null }, () =>
        [
          link.url,
          ...(link.publicUrl ? [`public page (shareable): ${link.publicUrl}`] : []),
          opener
            ? `Opened in your browser. The link works once and expires at ${link.expiresAt}.`
            : `Open this link in a browser; it works once and expires at ${link.expiresAt}.`,
        ].join("\n"),
      );
    });
}
