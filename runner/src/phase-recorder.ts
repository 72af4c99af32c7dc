/**
 * The phases of a job's layers, reported as `phases` events (protocol 2): a layer's context
 * download, its base pull (the FROM step), each Dockerfile step, the commit and the push, with
 * start and end on this machine's clock. Steps are read from the lines the backend prints
 * (`STEP n/m: <line>`, `COMMIT <name>`, the same lines the chain router reads); a backend
 * that prints none gets one `build` span per layer. A span is sent when it starts and again
 * when it ends (same span number: the orchestrator keeps the latest), one event in flight
 * at a time, so reports never overtake each other and a burst of steps travels as one event.
 */
import { MAX_PHASE_LINE_CHARS, MAX_PHASES_PER_EVENT, type PhaseOutcome, type RunnerPhase } from "@kiln-build/protocol";
import type { ChainProgress } from "./backends/types.ts";
import type { EventBody } from "./event-client.ts";
import { JobFailure } from "./failure.ts";
import type { OutputSink } from "./log-shipper.ts";

/** `COMMIT <name>`: buildah committing the final image after the last step. */
const COMMIT_LINE = /^COMMIT\b/;
/** The text after `STEP n/m: `. */
const STEP_TEXT = /^STEP \d+\/\d+: (.*)$/;

/** What the recorder needs: how to deliver an event and how to mask a secret in a Dockerfile line. */
export type PhaseRecorderOptions = {
  deliver: (body: Extract<EventBody, { type: "phases" }>) => Promise<unknown>;
  mask: (text: string) => string;
  /** The backend's reading of a line (`STEP n/m`); null for anything else. */
  progress: (line: string) => ChainProgress | null;
  now?: () => number;
};

/** Collects and sends one job's phase spans. */
export class PhaseRecorder {
  readonly #options: PhaseRecorderOptions;
  readonly #now: () => number;
  #nextSpan = 0;
  readonly #pending = new Map<number, RunnerPhase>();
  #sending: Promise<void> = Promise.resolve();
  #scheduled = false;

  constructor(options: PhaseRecorderOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Opens a span; returns a function that ends it. */
  begin(
    layerKey: string,
    kind: RunnerPhase["kind"],
    step?: { step: number; totalSteps: number; line: string },
    startedAtMs: number = this.#now(),
  ): (outcome: Exclude<PhaseOutcome, "running">, exitCode?: number | null) => void {
    const phase: RunnerPhase = {
      span: this.#nextSpan++,
      layerKey,
      kind,
      step: step?.step ?? null,
      totalSteps: step?.totalSteps ?? null,
      line: step ? this.#options.mask(step.line).slice(0, MAX_PHASE_LINE_CHARS) : null,
      startedAtMs,
      endedAtMs: null,
      outcome: "running",
      exitCode: null,
    };
    this.#report(phase);
    let ended = false;
    return (outcome, exitCode = null) => {
      if (ended) return;
      ended = true;
      this.#report({ ...phase, endedAtMs: Math.max(phase.startedAtMs, this.#now()), outcome, exitCode });
    };
  }

  /** This recorder's clock (epoch ms). */
  now(): number {
    return this.#now();
  }

  /** Follows one backend process's output: which step of which layer runs (see {@link StepTracker}). */
  steps(firstLayerKey: string): StepTracker {
    return new StepTracker(this, firstLayerKey, this.#options.progress);
  }

  /** Resolves once every span reported so far was delivered (or given up). */
  async flush(): Promise<void> {
    while (this.#pending.size > 0 || this.#scheduled) {
      this.#schedule();
      await this.#sending;
    }
  }

  #report(phase: RunnerPhase): void {
    this.#pending.set(phase.span, phase);
    this.#schedule();
  }

  // One delivery at a time: whatever is pending when it starts goes in it, the rest in the next.
  #schedule(): void {
    if (this.#scheduled || this.#pending.size === 0) return;
    this.#scheduled = true;
    this.#sending = this.#sending.then(async () => {
      const phases = [...this.#pending.values()].slice(0, MAX_PHASES_PER_EVENT);
      for (const phase of phases) if (this.#pending.get(phase.span) === phase) this.#pending.delete(phase.span);
      this.#scheduled = false;
      await this.#options.deliver({ type: "phases", sentAtMs: this.#now(), phases }).catch(() => undefined);
      this.#schedule();
    });
  }
}

/**
 * One build process's steps: each `STEP n/m` line ends the step before and opens the next
 * (a FROM step is the base pull), a `COMMIT` line opens the commit, and the end of the
 * process ends whatever is open. A chain charges each line to the layer the router says.
 */
export class StepTracker {
  readonly #recorder: PhaseRecorder;
  readonly #progress: (line: string) => ChainProgress | null;
  readonly #firstLayerKey: string;
  readonly #startedAtMs: number;
  #end: ((outcome: Exclude<PhaseOutcome, "running">, exitCode?: number | null) => void) | null = null;
  #sawStep = false;
  #openLayer: string | null = null;

  constructor(recorder: PhaseRecorder, firstLayerKey: string, progress: (line: string) => ChainProgress | null) {
    this.#recorder = recorder;
    this.#firstLayerKey = firstLayerKey;
    this.#progress = progress;
    this.#startedAtMs = recorder.now();
  }

  /** Reads one stdout line of the build, charged to `layerKey`. */
  line(layerKey: string, line: string): void {
    const progress = this.#progress(line);
    if (progress && "step" in progress) {
      const text = STEP_TEXT.exec(line)?.[1] ?? line;
      this.#switch(layerKey, /^from\s/i.test(text) ? "pull" : "step", { ...progress, line: text });
      this.#sawStep = true;
    } else if (COMMIT_LINE.test(line)) {
      // A chain's final COMMIT belongs to its last layer, which the router already charges.
      this.#switch(layerKey, "commit");
    }
  }

  /** The process ended: the open span ends with it (the failing step carries the exit code). */
  end(outcome: Exclude<PhaseOutcome, "running">, exitCode: number | null = null): void {
    if (!this.#sawStep && this.#end === null) {
      // Nothing printed a step: one span for the whole build, from when the tracker began.
      this.#recorder.begin(this.#firstLayerKey, "build", undefined, this.#startedAtMs)(outcome, exitCode);
      return;
    }
    this.#end?.(outcome, outcome === "failed" ? exitCode : null);
    this.#end = null;
  }

  /** The layer whose span is open, if any. */
  get openLayer(): string | null {
    return this.#openLayer;
  }

  #switch(layerKey: string, kind: RunnerPhase["kind"], step?: { step: number; totalSteps: number; line: string }): void {
    this.#end?.("ok");
    this.#end = this.#recorder.begin(layerKey, kind, step);
    this.#openLayer = layerKey;
  }
}

/** The outcome a span ends with when its process threw `error`: a stop is `stopped`, anything else `failed`. */
export function failedOutcome(error: unknown): { outcome: "failed" | "stopped"; exitCode: number | null } {
  const reason = error instanceof JobFailure ? error.reason : "infra";
  const exitCode = error instanceof JobFailure ? error.exitCode : null;
  return { outcome: reason === "cancelled" || reason === "timeout" ? "stopped" : "failed", exitCode };
}

/** `output` with its stdout lines also read by `steps` (charged to `layerKey`). */
export function trackSteps<T extends { stdout: OutputSink }>(output: T, steps: StepTracker, layerKey: string): T {
  const decoder = new TextDecoder("utf-8");
  let partial = "";
  const read = (text: string) => {
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) steps.line(layerKey, line);
  };
  const stdout: OutputSink = {
    write(data) {
      read(decoder.decode(data, { stream: true }));
      return output.stdout.write(data);
    },
    waitForDrain: () => output.stdout.waitForDrain(),
    end() {
      read(`${decoder.decode()}\n`);
      output.stdout.end();
    },
  };
  return { ...output, stdout };
}
