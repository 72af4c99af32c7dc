/**
 * Terminal manners, decided in one place: whether output to a stream may use colour, whether
 * it may redraw a status line in place (a spinner), and how wide it is. Pure: the stream, the
 * environment and the flags are arguments, so every rule is unit-tested.
 *
 * Colour, first rule that applies:
 *   1. the `color` flag (`kiln --no-color`, `image.build({ color })`);
 *   2. `NO_COLOR` with any non-empty value: no colour (no-color.org);
 *   3. `FORCE_COLOR`: colour, even off a TTY, unless it is `0` or `false`;
 *   4. `TERM=dumb`: no colour;
 *   5. colour exactly when the stream is a TTY.
 *
 * Interactive (a spinner instead of plain lines): the stream is a TTY that reports a usable
 * width, `TERM` is not `dumb` and `CI` is unset. A TTY without a size (`script` without one,
 * some containers) reports 0 or no columns: it gets plain lines.
 */

/** What a decision reads from an output stream (a `tty.WriteStream` or anything else). */
export type TerminalStream = { isTTY?: boolean; columns?: number };

/** What a decision reads from the flags; `color: false` is commander's `--no-color`. */
export type TerminalFlags = { color?: boolean | undefined };

/** How to write to one stream. */
export type Terminal = {
  /** ANSI colours and styles are allowed. Without colour, output holds no escape sequence at all. */
  color: boolean;
  /** A status line may be redrawn in place; otherwise print plain lines. */
  interactive: boolean;
  /** The usable width in columns, when the stream is a TTY that reports one. */
  columns: number | undefined;
};

/** Narrower than this, a status line has no room: plain lines instead. */
export const MIN_COLUMNS = 16;

/** The usable width of a stream: its columns when it is a TTY reporting at least {@link MIN_COLUMNS}. */
export function usableColumns(stream: TerminalStream): number | undefined {
  const columns = stream.columns;
  return stream.isTTY && typeof columns === "number" && Number.isFinite(columns) && columns >= MIN_COLUMNS
    ? Math.floor(columns)
    : undefined;
}

/** Whether output to `stream` may use colour (see the module comment for the order of the rules). */
export function colorFor(stream: TerminalStream, env: NodeJS.ProcessEnv, flags: TerminalFlags = {}): boolean {
  if (typeof flags.color === "boolean") return flags.color;
  if (env.NO_COLOR) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force.toLowerCase() !== "false";
  if (env.TERM === "dumb") return false;
  return !!stream.isTTY;
}

/** How to write to `stream` under `env` and the CLI's flags. */
export function terminalFor(stream: TerminalStream, env: NodeJS.ProcessEnv, flags: TerminalFlags = {}): Terminal {
  const columns = usableColumns(stream);
  const interactive = columns !== undefined && env.TERM !== "dumb" && env.CI === undefined;
  return { color: colorFor(stream, env, flags), interactive, columns };
}
