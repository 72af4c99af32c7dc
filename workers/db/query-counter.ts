/**
 * Counts the D1 statements a request runs, for the `Server-Timing` header the orchestrator
 * benchmark reads (issue 3: "D1 queries per cached resolve"). A delegating wrapper, not a
 * subclass: statements handed to `batch()` are unwrapped back to the binding's own objects.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";

/** A D1 binding that counts executed statements (a batch counts each of its statements). */
export function countingD1(db: D1Database): { db: D1Database; count: () => number } {
  let count = 0;
  const originals = new WeakMap<object, D1PreparedStatement>();
  const wrapStatement = (stmt: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        if (prop === "bind")
          return (...args: unknown[]) => wrapStatement((value as (...a: unknown[]) => D1PreparedStatement).apply(target, args));
        if (prop === "first" || prop === "all" || prop === "run" || prop === "raw") {
          return (...args: unknown[]) => {
            count++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    originals.set(proxy, stmt);
    return proxy;
  };
  const wrapped = new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      if (prop === "prepare") return (query: string) => wrapStatement(target.prepare(query));
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          count += statements.length;
          return target.batch(statements.map((s) => originals.get(s) ?? s));
        };
      }
      if (prop === "exec") {
        return (query: string) => {
          count++;
          return target.exec(query);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { db: wrapped, count: () => count };
}

const handlerStart = new WeakMap<Request, { counter: () => number; at: number | null }>();

/**
 * Middleware: routes below it see a counting `DB`; the response carries
 * `Server-Timing: d1;desc="queries=<n>", d1-handler;desc="queries=<m>"`: every statement of
 * the request (token lookup included), and those the route's handler ran itself.
 */
export const d1QueryTiming = createMiddleware<AppEnv>(async (c, next) => {
  const counter = countingD1(c.env.DB);
  c.env = { ...c.env, DB: counter.db };
  const mark = { counter: counter.count, at: null as number | null };
  handlerStart.set(c.req.raw, mark);
  try {
    await next();
  } finally {
    const total = counter.count();
    c.res.headers.append("server-timing", `d1;desc="queries=${total}", d1-handler;desc="queries=${total - (mark.at ?? 0)}"`);
  }
});

/** Called by a handler once authentication is done, so `d1-handler` counts only its own statements. */
export function markHandlerStart(request: Request): void {
  const mark = handlerStart.get(request);
  if (mark) mark.at = mark.counter();
}
