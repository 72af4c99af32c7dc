/**
 * A fake orchestrator for runner tests: a Node HTTP server that verifies every runner
 * event's Standard Webhooks signature and schema, refuses an applied `webhook-id` again with
 * 409 `duplicate_event` and a stale attempt with 409 `stale_attempt` (as docs/protocol.md says), records events, serves context manifests and blobs to holders of the download token, and
 * can simulate an outage (connections destroyed) or ask for a cancel.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import {
  type BaseDigestsReport,
  BaseDigestsReportSchema,
  type LogEntry,
  type RunnerEvent,
  RunnerEventSchema,
  type SbomEvent,
  SbomEventSchema,
  verifyWebhook,
} from "@kiln-build/protocol";

/** The fake orchestrator's state and controls. */
export class FakeOrchestrator {
  /** Accepted events, in arrival order, each once. */
  readonly events: RunnerEvent[] = [];
  /** Every POST attempt, including retries and refused ones. */
  deliveries = 0;
  /** Requests refused for a bad signature or schema (should stay 0). */
  readonly problems: string[] = [];
  readonly contexts = new Map<string, Buffer>();
  readonly downloadToken = "dl-token-0123456789";
  /** The `base_digests` reports received, in order. */
  readonly baseDigests: BaseDigestsReport[] = [];
  /** The `sbom` reports received, in order. */
  readonly sboms: SbomEvent[] = [];
  /** While true, every event connection is destroyed before a response. */
  outage = false;
  /** Record the next N events, then destroy the connection instead of answering (a lost response). */
  loseResponses = 0;
  /** Answer the next N events with `failStatus` without recording them. */
  failNext = 0;
  failStatus = 503;
  /** Answer every event with `cancel: true`. */
  cancel = false;
  /** Answer events of these jobs with `cancel: true`. */
  readonly cancelJobs = new Set<string>();
  /** Answer events of these attempt ids with 409 (stale attempt). */
  readonly staleAttempts = new Set<string>();
  readonly #seen = new Set<string>();
  readonly #server: Server;
  readonly #secret: string;
  readonly #sockets = new Set<Socket>();
  readonly #waiters: (() => void)[] = [];
  #url = "";

  private constructor(secret: string) {
    this.#secret = secret;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  /** Starts listening on 127.0.0.1. */
  static async start(secret: string): Promise<FakeOrchestrator> {
    const fake = new FakeOrchestrator(secret);
    await new Promise<void>((resolve) => fake.#server.listen(0, "127.0.0.1", resolve));
    fake.#url = `http://127.0.0.1:${(fake.#server.address() as { port: number }).port}`;
    return fake;
  }

  /** Where runners post events. */
  get eventsUrl(): string {
    return `${this.#url}/v1/runner/events`;
  }

  /** Registers a context's manifest and blobs (decision 0022) and returns its job-level description. */
  addContext(bundle: { manifest: Buffer; blobs: ReadonlyMap<string, Buffer> }): { digest: string; sizeBytes: number; url: string } {
    const digest = `sha256:${createHash("sha256").update(bundle.manifest).digest("hex")}`;
    this.contexts.set(digest, bundle.manifest);
    for (const [blob, bytes] of bundle.blobs) this.contexts.set(blob, bytes);
    return { digest, sizeBytes: bundle.manifest.length, url: `${this.#url}/v1/runner/contexts/${digest}` };
  }

  /** How many times each context object (manifest or blob) was downloaded. */
  readonly downloads = new Map<string, number>();

  /** Events of one type. */
  ofType<T extends RunnerEvent["type"]>(type: T): Extract<RunnerEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<RunnerEvent, { type: T }> => e.type === type);
  }

  /** Every log entry received (`log` and batched `logs` events), in sequence order, with its event's number. */
  logEntries(): (LogEntry & { seq: number })[] {
    const events = this.events.filter((e) => e.type === "log" || e.type === "logs").sort((a, b) => a.seq - b.seq);
    return events.flatMap((e) =>
      e.type === "logs"
        ? e.entries.map((entry) => ({ ...entry, seq: e.seq }))
        : [{ layerKey: e.layerKey, stream: e.stream, data: e.data, seq: e.seq }],
    );
  }

  /** The log as the orchestrator would reassemble it, checking sequence numbers are 0..n-1 exactly once. */
  logText(filter: (entry: LogEntry & { seq: number }) => boolean = () => true): string {
    const seqs = [...new Set(this.logEntries().map((e) => e.seq))];
    const events = this.events.filter((e) => e.type === "log" || e.type === "logs").length;
    seqs.forEach((seq, i) => {
      if (seq !== i) throw new Error(`log sequence has a gap at ${i} (got ${seq})`);
    });
    if (events !== seqs.length) throw new Error(`log sequence has ${events - seqs.length} duplicate(s)`);
    return this.logEntries()
      .filter(filter)
      .map((e) => e.data)
      .join("");
  }

  /** Waits until `predicate` holds (checked after every event). */
  async waitFor(predicate: () => boolean, timeoutMs = 120_000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${this.events.map((e) => e.type).join(",")}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  /** Resolves with the job's final event (`succeeded` or `failed`). */
  async final(timeoutMs = 300_000): Promise<Extract<RunnerEvent, { type: "succeeded" | "failed" }>> {
    await this.waitFor(() => this.events.some((e) => e.type === "succeeded" || e.type === "failed"), timeoutMs, "the final event");
    return this.events.find((e) => e.type === "succeeded" || e.type === "failed") as Extract<RunnerEvent, { type: "succeeded" | "failed" }>;
  }

  /** Destroys open connections (a crashed orchestrator). */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Stops the server. */
  async close(): Promise<void> {
    this.dropConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.#url);
    if (req.method === "GET" && url.pathname.startsWith("/v1/runner/contexts/")) {
      if (req.headers.authorization !== `Bearer ${this.downloadToken}`) return void res.writeHead(401).end();
      const digest = decodeURIComponent(url.pathname.slice("/v1/runner/contexts/".length));
      const tar = this.contexts.get(digest);
      if (!tar) return void res.writeHead(404).end();
      this.downloads.set(digest, (this.downloads.get(digest) ?? 0) + 1);
      res.writeHead(200, { "content-type": "application/x-tar", "content-length": tar.length });
      return void res.end(tar);
    }
    if (req.method !== "POST" || url.pathname !== "/v1/runner/events") return void res.writeHead(404).end();
    this.deliveries++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (this.outage) return void req.socket.destroy();
    const body = Buffer.concat(chunks).toString("utf8");
    const verified = verifyWebhook(this.#secret, req.headers as Record<string, string>, body);
    if (!verified.ok) {
      this.problems.push(`signature: ${verified.error}`);
      return void res.writeHead(401).end();
    }
    const json = JSON.parse(body) as { type?: unknown };
    // The image's SBOM report (decision 0024) is not a RunnerEvent: kept apart, answered as the orchestrator does.
    if (json.type === "base_digests") {
      const report = BaseDigestsReportSchema.safeParse(json);
      if (!report.success) this.problems.push(`base_digests schema: ${report.error.message}`);
      else this.baseDigests.push(report.data);
      return void res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true,"cancel":false}');
    }
    if (json.type === "sbom") {
      const report = SbomEventSchema.safeParse(json);
      if (!report.success) this.problems.push(`sbom schema: ${report.error.message}`);
      else this.sboms.push(report.data);
      return void res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true,"cancel":false}');
    }
    const parsed = RunnerEventSchema.safeParse(json);
    if (!parsed.success) {
      this.problems.push(`schema: ${parsed.error.message}`);
      return void res.writeHead(400).end();
    }
    if (this.failNext > 0) {
      this.failNext--;
      return void res
        .writeHead(this.failStatus, { "content-type": "application/json", "retry-after": "0" })
        .end('{"error":{"code":"test","message":"test"}}');
    }
    const conflict = (code: string) =>
      void res.writeHead(409, { "content-type": "application/json" }).end(JSON.stringify({ error: { code, message: code } }));
    if (this.staleAttempts.has(parsed.data.attemptId)) return conflict("stale_attempt");
    // As the real orchestrator: an id already applied is refused as a duplicate, changing nothing.
    if (this.#seen.has(verified.id)) return conflict("duplicate_event");
    this.#seen.add(verified.id);
    this.events.push(parsed.data);
    for (const wake of this.#waiters.splice(0)) wake();
    if (this.loseResponses > 0) {
      this.loseResponses--;
      return void req.socket.destroy();
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, cancel: this.cancel || this.cancelJobs.has(parsed.data.jobId) }));
  }
}
