/** CLI output and failures: "what happened / details / how to fix", and documented exit codes. */
import {
  APIConnectionError,
  APIError,
  AuthenticationError,
  ImageBuildError,
  KilnError,
  NotFoundAPIError,
  PermissionDeniedError,
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

/** Turns any error into a CliError with a fix hint. */
export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ImageBuildError) {
    return new CliError("The image build failed.", {
      details: error.message,
      fix: "Fix the failing step, then run the build again.",
      exitCode: EXIT.buildFailed,
    });
  }
  if (error instanceof AuthenticationError) {
    return new CliError("The Kiln server rejected the token.", {
      details: error.message,
      fix: "Set KILN_TOKEN to a valid token (npm start prints one), or pass --token.",
      exitCode: EXIT.auth,
    });
  }
  if (error instanceof PermissionDeniedError) {
    return new CliError("The token is not allowed to do this.", {
      details: error.message,
      fix: "Use a token with the scope named above (kiln token create --scope ...).",
      exitCode: EXIT.auth,
    });
  }
  if (error instanceof NotFoundAPIError) {
    return new CliError("Not found in this workspace.", {
      details: error.message,
      fix: "Check the id or name (kiln images ls, kiln tags get NAME).",
      exitCode: EXIT.notFound,
    });
  }
  if (error instanceof APIConnectionError) {
    return new CliError("Could not reach the Kiln server.", {
      details: error.message,
      fix: "Start it with `npm start`, or set KILN_SERVER_URL / --server.",
      exitCode: EXIT.unreachable,
    });
  }
  if (error instanceof APIError) return new CliError("The Kiln server refused the request.", { details: error.message });
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

/** Prints a failure to stderr in the three-part form. */
export function printError(error: CliError): void {
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
