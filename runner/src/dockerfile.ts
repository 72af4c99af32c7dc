/**
 * Renders the Dockerfile the runner builds for one layer: the layer's exact lines with
 * `FROM base` pointed at the parent image, and every RUN step given the layer's secrets as
 * environment variables. Secrets come from a secret mount (`RUN --mount=type=secret`,
 * supported by buildah and BuildKit alike) that the step sources before running, so values
 * never enter the image config, history, layers or the build arguments. Pure.
 */
import { extractBuilderFlags, parseDockerfile } from "@kiln-build/protocol/dockerfile";

/** Secret id of the per-layer environment file. */
export const SECRET_ENV_ID = "kiln-env";
/** Where RUN steps find the environment file (a mount, gone when the step ends). */
export const SECRET_ENV_TARGET = "/run/kiln/secret-env";

/** What to render. */
export type DockerfileOptions = {
  commands: readonly string[];
  /** Replaces a leading `FROM base` (null for root layers). */
  parentReference: string | null;
  /** Mount and source the secret environment file in every RUN step. */
  secretEnv: boolean;
  /** The secret's id (default {@link SECRET_ENV_ID}; a chain gives each layer its own). */
  secretId?: string;
  /** Extra flags for every RUN step (BuildKit's `--device=` for GPUs). */
  runFlags?: readonly string[];
  /** Lines appended after the layer's own (the `runFunction` step). */
  extraLines?: readonly string[];
};

/** A layer's lines the runner cannot turn into a buildable Dockerfile. */
export class DockerfileRenderError extends Error {
  override name = "DockerfileRenderError";
}

/** The Dockerfile text for one layer. */
export function renderDockerfile(options: DockerfileOptions): string {
  const commands = [...options.commands, ...(options.extraLines ?? [])];
  if (commands[0]?.trim() === "FROM base") {
    if (!options.parentReference) throw new DockerfileRenderError("the layer builds FROM base, but the job names no parent image");
    commands[0] = `FROM ${options.parentReference}`;
  }
  const text = commands.join("\n");
  const runFlags = options.runFlags ?? [];
  if (!options.secretEnv && runFlags.length === 0) return `${text}\n`;
  return `${rewriteRunSteps(text, options.secretEnv ? (options.secretId ?? SECRET_ENV_ID) : null, runFlags)}\n`;
}

/** Adds the secret mount (of secret `secretId`, if any) and `runFlags` to every RUN instruction of `text`. */
export function rewriteRunSteps(text: string, secretId: string | null, runFlags: readonly string[]): string {
  const secretEnv = secretId !== null;
  let ast: ReturnType<typeof parseDockerfile>;
  try {
    ast = parseDockerfile(text);
  } catch (error) {
    throw new DockerfileRenderError(`the layer's Dockerfile lines do not parse: ${error instanceof Error ? error.message : String(error)}`);
  }
  const lines = text.split("\n");
  // Bottom-up, so earlier instructions keep their line numbers.
  for (const inst of [...ast.instructions].reverse()) {
    if (inst.command !== "run") continue;
    const bodyLines = inst.heredocs.reduce((n, h) => n + (h.content.match(/\n/g)?.length ?? 0) + 1, 0);
    const commandLines = inst.endLine - inst.startLine + 1 - bodyLines;
    const head = /^(\s*\S+)\s*([\s\S]*)$/.exec(inst.original);
    if (!head) continue;
    const keyword = head[1]!.trim();
    const afterKeyword = head[2]!;
    const { rest } = extractBuilderFlags(afterKeyword);
    if (!afterKeyword.endsWith(rest))
      throw new DockerfileRenderError(`cannot rewrite the flags of line ${inst.startLine}: ${inst.original}`);
    const userFlags = afterKeyword.slice(0, afterKeyword.length - rest.length).trim();
    const flags = [...(secretEnv ? [`--mount=type=secret,id=${secretId},target=${SECRET_ENV_TARGET}`] : []), ...runFlags];
    let command = rest;
    let sourceLine: string | null = null;
    if (secretEnv) {
      if (inst.json) {
        // Exec form has no shell: wrap it in one that loads the file, then execs the argv unchanged.
        command = JSON.stringify(["/bin/sh", "-c", `. ${SECRET_ENV_TARGET} && exec "$@"`, "sh", ...inst.args]);
      } else if (
        inst.heredocs.length > 0 &&
        rest
          .trim()
          .split(/\s+/)
          .every((w) => /^\d*<<-?/.test(w))
      ) {
        // `RUN <<EOF`: the body is the script; load the file on its first line.
        if (inst.heredocs[0]!.content.startsWith("#!")) {
          throw new DockerfileRenderError(
            `line ${inst.startLine}: a heredoc script with a #! line cannot receive secrets as environment variables; start it with a shell command instead`,
          );
        }
        sourceLine = `. ${SECRET_ENV_TARGET}`;
      } else {
        command = `. ${SECRET_ENV_TARGET} && ${rest}`;
      }
    }
    const replacement = [[keyword, userFlags, ...flags, command].filter((p) => p !== "").join(" ")];
    if (sourceLine !== null) replacement.push(sourceLine);
    lines.splice(inst.startLine - 1, commandLines, ...replacement);
  }
  return lines.join("\n");
}

/** The environment file a step sources: `export NAME='value'` lines, single-quoted for sh. */
export function secretEnvFile(values: Record<string, string>): string {
  return Object.entries(values)
    .filter(([name]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    .map(([name, value]) => `export ${name}='${value.replaceAll("'", `'\\''`)}'\n`)
    .join("");
}
