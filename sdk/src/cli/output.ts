/** CLI output and failures: "what happened / details / how to fix", and documented exit codes. */
import {
  APIConnectionError,
  APIError,
  AuthenticationError,
  BadRequestError,
  ImageBuildError,
  KilnError,
  NotFoundAPIError,
  PermissionDeniedError,
  RateLimitError,
} from "../errors.ts";

/** Exit codes (README "CLI"): scripts can branch on them. */
export const EXIT = { ok: 0, failure: 1, usage: 2, buildFailed: 3, auth: 4, notFound: 5, unreachable: 6 } as const;

/** A CLI failure with the three parts every message has. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly details: string | undefined;
  readonly fix: string | undefined;

  constructor(message: string, options: { details?: string; fix?: string; exitCode?: number } = {}) {
    super(message);
    this.exitCode = options.exitCode ?? EXIT.failure;
    this.details = options.details;
    this.fix = options.fix;
  }
}

/** Where the failing command was talking to: hints for the repository's dev stack appear only for a local server. */
export type ErrorContext = { server?: string | undefined; local?: boolean };

/** What to do about a failed build depends on why it failed: the user's step, the infrastructure, time or a cancel. */
const BUILD_FIX: Record<string, string> = {
  build: "Fix the failing step (its last lines are above; `kiln logs BUILD` prints the whole log), then build again.",
  infra:
    "The build infrastructure failed, not your step: check the fleets (`kiln fleet ls`, `kiln doctor`) or ask the Kiln operator, then build again.",
  timeout: "The build ran out of time: make the step faster or give the build more time (timeoutSeconds), then build again.",
  cancelled: "The build was cancelled; build again to start it anew.",
  dependency: "A layer this image builds on failed in another build: fix that build first (its log says why).",
};

/** Turns any error into a CliError with a fix hint that fits the failure's kind. */
export function toCliError(error: unknown, context: ErrorContext = {}): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ImageBuildError) {
    return new CliError("The image build failed.", {
      details: error.message,
      fix: BUILD_FIX[error.reason] ?? BUILD_FIX.build,
      exitCode: EXIT.buildFailed,
    });
  }
  if (error instanceof APIError) return apiFailure(error, context);
  if (error instanceof APIConnectionError) {
    return new CliError("Could not reach the Kiln server.", {
      details: error.message,
      fix: context.local
        ? "Start the local stack with `npm start` in the Kiln repository, or point --server / KILN_SERVER_URL elsewhere."
        : "Check the server URL (--server, KILN_SERVER_URL or the profile's: `kiln whoami`) and your network.",
      exitCode: EXIT.unreachable,
    });
  }
  if (error instanceof KilnError)
    return new CliError(`${error.name}: ${error.message.split("\n")[0]}`, {
      details: error.message,
      fix: "Fix the image definition and try again.",
    });
  return new CliError("Unexpected error.", {
    details: String((error as Error)?.stack ?? error),
    fix: "Please report this with the details above.",
  });
}

/** A refusal from the server: what it said, each invalid field on its own line, and the fix for its kind. */
function apiFailure(error: APIError, context: ErrorContext): CliError {
  const details = [error.message, ...fieldLines(error.details)].join("\n");
  if (error instanceof AuthenticationError) {
    return new CliError("The Kiln server rejected the token.", {
      details,
      fix: context.local
        ? "Set KILN_TOKEN to the token `npm start` printed, or run `kiln login --server URL`."
        : "Log in again with `kiln login` (or pass --token / set KILN_TOKEN); `kiln whoami` shows which token is in use.",
      exitCode: EXIT.auth,
    });
  }
  if (error instanceof PermissionDeniedError) {
    return new CliError("The token is not allowed to do this.", {
      details,
      fix: "Use a token with the scope named above (an admin creates one with `kiln token create NAME --scope ...`).",
      exitCode: EXIT.auth,
    });
  }
  if (error instanceof NotFoundAPIError) {
    return new CliError("Not found in this workspace.", {
      details,
      fix: "Check the id or name (kiln images ls, kiln tags ls) and the workspace (`kiln whoami`).",
      exitCode: EXIT.notFound,
    });
  }
  if (error instanceof RateLimitError) {
    return new CliError("The workspace is over its request rate or quota.", {
      details,
      fix: "Wait a little (the server's Retry-After says how long) and run the command again.",
    });
  }
  if (error instanceof BadRequestError) {
    return new CliError("The Kiln server refused the request.", {
      details,
      fix: "Correct the values named above and run the command again.",
    });
  }
  return new CliError("The Kiln server refused the request.", { details });
}

/** The server's validation issues (`details: [{ path, message }]`) as `path: message` lines. */
export function fieldLines(details: unknown): string[] {
  if (!Array.isArray(details)) return [];
  return details.flatMap((issue: { path?: unknown; message?: unknown }) => {
    if (typeof issue?.message !== "string") return [];
    const path = Array.isArray(issue.path) && issue.path.length ? issue.path.join(".") : "(request)";
    return [`  ${path}: ${issue.message}`];
  });
}

/** Prints a failure: the three-part text on stderr, or with --json one JSON object on stdout. */
export function printError(error: CliError, json = false): void {
  if (json) {
    const body = { error: { message: error.message, details: error.details ?? null, fix: error.fix ?? null, exitCode: error.exitCode } };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return;
  }
  process.stderr.write(`Error: ${error.message}\n`);
  if (error.details) process.stderr.write(`\n${error.details.replace(/^/gm, "  ")}\n`);
  if (error.fix) process.stderr.write(`\nHow to fix: ${error.fix}\n`);
}

/** Prints `value` as JSON (for --json) or via `human`. */
export function emit(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

/** A plain text table with padded columns. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
