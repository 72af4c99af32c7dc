/**
 * Runs a build tool as a child process in its own process group, streams its output into
 * sinks with backpressure (a paused pipe makes the tool block on write instead of the
 * runner buffering without bound), and stops it on abort: SIGTERM to the whole group,
 * SIGKILL after a grace period.
 */
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import type { OutputSink } from "./log-shipper.ts";

/** How a child process ended. */
export type ProcessResult = { exitCode: number | null; signal: NodeJS.Signals | null; aborted: boolean };

/** A command to run: argv plus extra environment. */
export type Command = { argv: string[]; env?: Record<string, string>; cwd?: string };

/** Options of {@link runProcess}. */
export type RunProcessOptions = {
  stdout?: OutputSink;
  stderr?: OutputSink;
  /** Aborting stops the process: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  killGraceMs?: number;
};

/** Runs `command` to completion; never throws for a non-zero exit (the result says it). */
export function runProcess(command: Command, options: RunProcessOptions = {}): Promise<ProcessResult> {
  const [file, ...args] = command.argv;
  if (!file) throw new Error("empty command");
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: command.cwd,
      env: { ...process.env, ...command.env },
      stdio: ["ignore", "pipe", "pipe"],
      // Own process group, so a cancel reaches every helper the tool started.
      detached: true,
    });
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    const signalGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
        // The leader is gone; its group may still hold helpers.
        if (child.pid !== undefined) tryKill(-child.pid, sig);
        return;
      }
      tryKill(-child.pid, sig);
    };
    const onAbort = () => {
      if (aborted) return;
      aborted = true;
      signalGroup("SIGTERM");
      killTimer = setTimeout(() => {
        signalGroup("SIGKILL");
        // A grandchild that escaped the group may keep our pipes open: stop waiting for them.
        closeTimer = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, 2_000);
      }, options.killGraceMs ?? 10_000);
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();

    pipe(child.stdout, options.stdout);
    pipe(child.stderr, options.stderr);
    child.on("error", (error) => {
      options.signal?.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
      reject(error);
    });
    child.on("close", (code, sig) => {
      options.signal?.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
      clearTimeout(closeTimer);
      options.stdout?.end();
      options.stderr?.end();
      resolve({ exitCode: code, signal: sig, aborted });
    });
  });
}

function pipe(stream: Readable | null, sink: OutputSink | undefined): void {
  if (!stream) return;
  stream.on("data", (data: Buffer) => {
    if (!sink || sink.write(data)) return;
    stream.pause();
    void sink.waitForDrain().then(() => stream.resume());
  });
  // A destroyed pipe (see the SIGKILL path) must not crash the runner.
  stream.on("error", () => {});
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Runs a short helper command and returns its stdout; throws with stderr on failure. */
export async function captureProcess(command: Command, signal?: AbortSignal): Promise<string> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const collect = (into: Buffer[]): OutputSink => ({
    write: (data) => {
      into.push(data);
      return true;
    },
    waitForDrain: () => Promise.resolve(),
    end: () => {},
  });
  const result = await runProcess(command, {
    stdout: collect(out),
    stderr: collect(err),
    ...(signal ? { signal } : {}),
    killGraceMs: 2_000,
  });
  if (result.exitCode !== 0) {
    const why = Buffer.concat(err).toString("utf8").trim().split("\n").slice(-5).join("\n");
    throw new Error(`${command.argv[0]} exited with ${result.exitCode ?? result.signal}: ${why}`);
  }
  return Buffer.concat(out).toString("utf8");
}
