/**
 * A spinner and one line of status at the bottom of a TTY, with log lines scrolling above it.
 *
 * Built for bounded output rather than effects: the status is cut to one line narrower than
 * the terminal, so it never wraps and `\r` always returns to its start (no line counting: a
 * terminal reporting 0 columns once made ora count Infinity lines to clear and loop forever
 * writing cursor movements). It is redrawn at most every {@link MIN_REDRAW_MS} and the frame
 * advances every {@link FRAME_MS}, however fast log lines and status updates come. Without
 * colour it writes no escape sequence: it clears with spaces instead of `ESC[K`.
 */

/** The frame advances this often. */
export const FRAME_MS = 100;
/** Two redraws are at least this far apart (so at most 20 per second). */
export const MIN_REDRAW_MS = 50;

const FRAMES = process.platform === "win32" ? ["-", "\\", "|", "/"] : ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const CLEAR_TO_END = "\x1b[K";

/** What the status line writes to: a TTY stream, or a fake with the same shape in tests. */
export type StatusStream = { write(text: string): unknown; columns?: number };

/** The status line of one build; `close()` clears it and stops its timer. */
export class StatusLine {
  readonly #out: StatusStream;
  readonly #color: boolean;
  readonly #now: () => number;
  #text: string;
  /** How many columns the status occupies on screen (0: not drawn). */
  #drawnWidth = 0;
  #lastDraw = Number.NEGATIVE_INFINITY;
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;
  #pending: NodeJS.Immediate | undefined;

  constructor(out: StatusStream, options: { color: boolean; text: string; now?: () => number }) {
    this.#out = out;
    this.#color = options.color;
    this.#text = options.text;
    this.#now = options.now ?? Date.now;
    this.#timer = setInterval(() => {
      this.#frame = (this.#frame + 1) % FRAMES.length;
      this.draw();
    }, FRAME_MS);
    // An unclosed status line never keeps the process alive.
    this.#timer.unref();
    this.#soon();
  }

  /** Changes the status; it shows at the next redraw. */
  set text(text: string) {
    this.#text = text;
    this.#soon();
  }

  /** Prints whole lines above the status (each ending in a newline). */
  print(lines: string): void {
    this.#clear();
    this.#out.write(lines);
    // A burst of lines (one log chunk) costs one clear and one redraw.
    this.#soon();
  }

  /** Draws the status now, unless it was drawn less than {@link MIN_REDRAW_MS} ago (the next frame will). */
  draw(): void {
    if (this.#timer === undefined || this.#now() - this.#lastDraw < MIN_REDRAW_MS) return;
    const columns = this.#out.columns;
    // The terminal lost its size (resized to nothing): draw nothing rather than guess.
    if (typeof columns !== "number" || !Number.isFinite(columns) || columns < 2) {
      this.#clear();
      return;
    }
    const line = fit(`${FRAMES[this.#frame]} ${this.#text}`, Math.floor(columns) - 1);
    const width = [...line].length;
    const rest = this.#color ? CLEAR_TO_END : " ".repeat(Math.max(0, this.#drawnWidth - width));
    this.#out.write(`\r${line}${rest}`);
    this.#drawnWidth = width;
    this.#lastDraw = this.#now();
  }

  /** Clears the status and stops redrawing; idempotent. */
  close(): void {
    if (this.#timer === undefined) return;
    this.#clear();
    clearInterval(this.#timer);
    if (this.#pending) clearImmediate(this.#pending);
    this.#timer = undefined;
    this.#pending = undefined;
  }

  #soon(): void {
    if (this.#timer === undefined) return;
    this.#pending ??= setImmediate(() => {
      this.#pending = undefined;
      this.draw();
    });
  }

  #clear(): void {
    if (this.#drawnWidth === 0) return;
    this.#out.write(this.#color ? `\r${CLEAR_TO_END}` : `\r${" ".repeat(this.#drawnWidth)}\r`);
    this.#drawnWidth = 0;
  }
}

/** `text` on one line, cut to `width` code points (a status is ASCII and a frame character). */
function fit(text: string, width: number): string {
  const chars = [...text.replace(/[\r\n]+/g, " ")];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join("")}…`;
}
