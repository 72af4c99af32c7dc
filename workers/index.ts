/**
 * The Kiln Worker: the orchestrator's HTTP entry point. One Hono sub-app per resource under
 * `workers/routes/`, one error mapping (`errors.ts`), zod schemas as the single source of
 * validation and of the OpenAPI document at `/openapi.json`.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./app-env.ts";
import { badRequest, errorResponse } from "./errors.ts";

const app = new OpenAPIHono<AppEnv>({
  // Validation failures become our one error shape instead of zod-openapi's default.
  defaultHook: (result) => {
    if (!result.success) throw badRequest("Request validation failed.", result.error.issues);
  },
});

app.use(async (c, next) => {
  const requestId = c.req.header("x-request-id")?.slice(0, 128) || crypto.randomUUID();
  c.set("requestId", requestId);
  await next();
  c.header("x-request-id", requestId);
});

/** Liveness: answers without touching storage, the baseline the benchmarks compare against. */
app.get("/healthz", (c) => c.json({ ok: true }));

app.doc31("/openapi.json", { openapi: "3.1.0", info: { title: "Kiln API", version: "1" } });
app.notFound((c) => c.json({ error: { code: "not_found", message: `No route for ${c.req.method} ${c.req.path}.` } }, 404));
app.onError(errorResponse);

export default app;
