import { describe, expect, it } from "vitest";
import { colorFor, MIN_COLUMNS, terminalFor, usableColumns } from "../src/cli/terminal.ts";

const tty = (columns: number | undefined) => ({ isTTY: true, columns });
const pipe = { isTTY: false };

describe("terminalFor", () => {
  it("gives a TTY with a size colour and a status line, and a pipe neither", () => {
    expect(terminalFor(tty(80), {})).toEqual({ color: true, interactive: true, columns: 80 });
    expect(terminalFor(pipe, {})).toEqual({ color: false, interactive: false, columns: undefined });
    expect(terminalFor({}, {})).toEqual({ color: false, interactive: false, columns: undefined });
  });

  it("gives a TTY without a usable width plain lines (script without a size reports 0 columns)", () => {
    for (const columns of [0, undefined, Number.NaN, Number.POSITIVE_INFINITY, -1, MIN_COLUMNS - 1]) {
      const terminal = terminalFor(tty(columns), {});
      expect(terminal.interactive, String(columns)).toBe(false);
      expect(terminal.columns, String(columns)).toBeUndefined();
      // Colour is about the stream, not its size.
      expect(terminal.color, String(columns)).toBe(true);
    }
    expect(usableColumns(tty(MIN_COLUMNS))).toBe(MIN_COLUMNS);
    expect(usableColumns(tty(100.7))).toBe(100);
    expect(usableColumns({ isTTY: false, columns: 80 })).toBeUndefined();
  });

  it("honours NO_COLOR with any non-empty value, and only colour", () => {
    for (const value of ["1", "true", "0", "no", " "]) {
      expect(terminalFor(tty(80), { NO_COLOR: value })).toEqual({ color: false, interactive: true, columns: 80 });
    }
    // Empty means unset (no-color.org).
    expect(terminalFor(tty(80), { NO_COLOR: "" }).color).toBe(true);
  });

  it("honours FORCE_COLOR off a TTY, and FORCE_COLOR=0/false as no colour", () => {
    for (const value of ["", "1", "2", "3", "true"]) expect(colorFor(pipe, { FORCE_COLOR: value }), value).toBe(true);
    for (const value of ["0", "false", "FALSE"]) expect(colorFor(tty(80), { FORCE_COLOR: value }), value).toBe(false);
    // Forcing colour does not make a pipe interactive.
    expect(terminalFor(pipe, { FORCE_COLOR: "1" })).toEqual({ color: true, interactive: false, columns: undefined });
  });

  it("puts --no-color above everything, NO_COLOR above FORCE_COLOR", () => {
    expect(terminalFor(tty(80), { FORCE_COLOR: "1" }, { color: false }).color).toBe(false);
    expect(terminalFor(tty(80), { NO_COLOR: "1", FORCE_COLOR: "1" }).color).toBe(false);
    // `image.build({ color: true })` forces it.
    expect(terminalFor(pipe, { NO_COLOR: "1" }, { color: true }).color).toBe(true);
    // An unset flag defers to the environment.
    expect(terminalFor(tty(80), { NO_COLOR: "1" }, { color: undefined }).color).toBe(false);
  });

  it("treats TERM=dumb as neither colour nor redrawing, and CI as not interactive", () => {
    expect(terminalFor(tty(80), { TERM: "dumb" })).toEqual({ color: false, interactive: false, columns: 80 });
    expect(terminalFor(tty(80), { TERM: "dumb", FORCE_COLOR: "1" }).color).toBe(true);
    expect(terminalFor(tty(80), { CI: "true" })).toEqual({ color: true, interactive: false, columns: 80 });
    expect(terminalFor(tty(80), { TERM: "xterm-256color" }).interactive).toBe(true);
  });
});
