/**
 * The error every Dockerfile module throws: an `InvalidError` that also carries BuildKit's
 * own wording of the problem and the lines it concerns.
 */

import { InvalidError } from "../errors.ts";

/** Options for {@link DockerfileError}: where the problem is and how to fix it. */
export interface DockerfileErrorOptions {
  /** First line (1-based) of the offending instruction, when known. */
  startLine?: number;
  /** Last line (1-based) of the offending instruction, when known. */
  endLine?: number;
  /** A sentence telling the user how to fix the problem; appended to the message. */
  hint?: string;
  /** The underlying error, if this one wraps another. */
  cause?: unknown;
}

/** A Dockerfile BuildKit would reject; `reason` is BuildKit's message, verbatim. */
export class DockerfileError extends InvalidError {
  /** BuildKit's message for this problem, without location or hint. */
  readonly reason: string;
  /** First line (1-based) of the offending instruction, if known. */
  readonly startLine: number | undefined;
  /** Last line (1-based) of the offending instruction, if known. */
  readonly endLine: number | undefined;
  /** How to fix the problem, if the module could tell. */
  readonly hint: string | undefined;

  constructor(reason: string, options: DockerfileErrorOptions = {}) {
    const where = options.startLine === undefined ? "" : `Dockerfile line ${lineRange(options)}: `;
    const hint = options.hint === undefined ? "" : ` (${options.hint})`;
    super(where + reason + hint, options.cause === undefined ? undefined : { cause: options.cause });
    // Callers match on the public error kind; the subclass only adds fields.
    this.name = "InvalidError";
    this.reason = reason;
    this.startLine = options.startLine;
    this.endLine = options.endLine ?? options.startLine;
    this.hint = options.hint;
  }

  /** A copy of this error pinned to the given lines, unless it already has a location. */
  at(startLine: number, endLine: number): DockerfileError {
    if (this.startLine !== undefined) return this;
    const options: DockerfileErrorOptions = { startLine, endLine, cause: this.cause };
    if (this.hint !== undefined) options.hint = this.hint;
    return new DockerfileError(this.reason, options);
  }
}

function lineRange(o: DockerfileErrorOptions): string {
  if (o.endLine === undefined || o.endLine === o.startLine) return String(o.startLine);
  return `${o.startLine}-${o.endLine}`;
}

/** Re-throws `err` pinned to a location if it is a {@link DockerfileError}; else as is. */
export function withLocation(err: unknown, startLine: number, endLine: number): unknown {
  return err instanceof DockerfileError ? err.at(startLine, endLine) : err;
}
