/**
 * A short-lived, per-isolate cache of successful token resolutions for the hottest route
 * (`POST /v1/images`, which the SDK calls on every `image.build()`), so a cached resolve costs
 * one D1 statement instead of two. Only successes are cached, for `TOKEN_CACHE_TTL_MS`: a new
 * token works at once; a revoked one keeps working in an isolate that cached it for at most
 * that long. Every other route authenticates uncached (`authenticate`).
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv, AuthContext } from "../app-env.ts";
import { unauthorized } from "../errors.ts";
import { resolveToken } from "./middleware.ts";
import { hashToken } from "./tokens.ts";

/** How long a resolution is trusted without asking D1 again. */
export const TOKEN_CACHE_TTL_MS = 10_000;
const MAX_ENTRIES = 1024;

// Keyed by sha256(token) so the cache never holds a token in clear. Holds the resolution's
// promise, so a burst of concurrent requests with one token costs one lookup.
const cache = new Map<string, { auth: Promise<AuthContext>; expiresAtMs: number }>();

/** `authenticate` with the cache in front of `resolveToken`. */
export const authenticateCached = createMiddleware<AppEnv>(async (c, next) => {
  const token = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  if (!token) throw unauthorized();
  const key = await hashToken(token);
  const now = Date.now();
  let entry = cache.get(key);
  if (!entry || entry.expiresAtMs <= now) {
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    const pending = { auth: resolveToken(c.env, token), expiresAtMs: now + TOKEN_CACHE_TTL_MS };
    cache.set(key, pending);
    // Failures are not cached: the next request asks D1 again.
    pending.auth.catch(() => {
      if (cache.get(key) === pending) cache.delete(key);
    });
    entry = pending;
  }
  c.set("auth", await entry.auth);
  await next();
});

/** Forgets every cached resolution (tests). */
export function clearTokenCache(): void {
  cache.clear();
}
