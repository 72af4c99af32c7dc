/**
 * The Kiln Worker: the orchestrator's HTTP entry point (Hono). Routes live one module per
 * resource under `workers/routes/`.
 */
import { Hono } from "hono";

const app = new Hono<{ Bindings: Env }>();

/** Liveness: answers without touching storage, the baseline the benchmarks compare against. */
app.get("/healthz", (c) => c.json({ ok: true }));

export default app;
