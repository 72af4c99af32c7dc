/**
 * Request budgets on the public surface, with the Workers rate-limiting binding
 * (wrangler.toml `[[ratelimits]]`): every request draws from its client address's budget
 * (`RATE_LIMIT_IP`) and, when it carries a credential, from that credential's budget
 * (`RATE_LIMIT_TOKEN`); runner events and context downloads draw from a larger per-address
 * budget (`RATE_LIMIT_RUNNER`) because one build machine may run many builds. A spent budget
 * answers 429 with `Retry-After` (the SDK and the runner wait and retry).
 *
 * The binding counts per Cloudflare location in fixed windows of 10 or 60 s and is eventually
 * consistent, so these are flood guards, not exact quotas (docs/scale.md#protection). If the
 * binding is missing or fails, the request goes through: an outage of the limiter must not
 * become an outage of the API. A budget this isolate saw allowed within the window is charged
 * behind the request (in `waitUntil`, at most `MAX_UNCONFIRMED_CHARGES` unanswered at a time)
 * and one it saw spent is refused from memory (rate-limit-ledger.ts, decision 0025): under
 * `wrangler dev` each `limit()` call is a Durable Object write, the largest cost of a request.
 */
import { sha256Hex } from "@kiln-build/protocol";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env.ts";
import { executionContextOf, type WaitUntil } from "./edge-cache.ts";
import { type ApiError, tooManyRequests } from "./errors.ts";
import { log } from "./log.ts";
import { BudgetLedger } from "./rate-limit-ledger.ts";
import { RegistryError } from "./registry/errors.ts";

/** The three budgets, by binding name. */
export type RateLimitBinding = "RATE_LIMIT_IP" | "RATE_LIMIT_TOKEN" | "RATE_LIMIT_RUNNER";

/** One budget a request draws from. */
export type RateLimitCharge = { binding: RateLimitBinding; key: string; scope: "client" | "token" | "runner" };

/** What the binding offers (the `RateLimit` type of workers-types, narrowed to what we call). */
export type Limiter = { limit(options: { key: string }): Promise<{ success: boolean }> };

/**
 * The window of every `[[ratelimits]]` entry in wrangler.toml (`simple.period`), and so the
 * `Retry-After` we send: the binding does not say when its window ends, and a client that
 * waits one full window is certain to find a fresh one.
 */
export const RATE_LIMIT_PERIOD_SECONDS = 10;

// Liveness probes never count: a load balancer must see the Worker even while clients are shed.
const EXEMPT = new Set(["/healthz"]);

/**
 * The budgets a request draws from (pure). `credentialHash` is a digest of the presented
 * credential (never the credential itself: keys leave the Worker), or null without one.
 */
export function rateLimitCharges(path: string, clientAddress: string | null, credentialHash: string | null): RateLimitCharge[] {
  if (EXEMPT.has(path)) return [];
  const charges: RateLimitCharge[] = [];
  // Cloudflare sets CF-Connecting-IP on every request (clients cannot remove it) and wrangler
  // dev sets it from the socket; only in-process calls (tests) lack it, and they are not charged
  // to an address rather than all to one shared "unknown" budget.
  if (clientAddress) {
    if (path.startsWith("/v1/runner/")) return [{ binding: "RATE_LIMIT_RUNNER", key: `runner:${clientAddress}`, scope: "runner" }];
    charges.push({ binding: "RATE_LIMIT_IP", key: `ip:${clientAddress}`, scope: "client" });
  }
  // Runner routes authenticate with a signature or a job token, charged per machine above.
  if (credentialHash && !path.startsWith("/v1/runner/"))
    charges.push({ binding: "RATE_LIMIT_TOKEN", key: `cred:${credentialHash}`, scope: "token" });
  return charges;
}

/** The credential a request presents (`Authorization: Bearer|Basic ...`), or null. */
export function presentedCredential(authorization: string | undefined): string | null {
  const match = /^(Bearer|Basic)\s+(\S{1,4096})$/i.exec(authorization ?? "");
  return match ? match[2]! : null;
}

/** First 32 hex digits of sha256(credential): a stable budget key that reveals nothing. */
export async function credentialDigest(credential: string): Promise<string> {
  return (await sha256Hex(credential)).slice(0, 32);
}

/** What `firstSpentBudget` needs to charge budgets behind the request (decision 0025). */
export type ChargeBehind = { ledger: BudgetLedger; waitUntil: WaitUntil; nowMs: () => number };

/**
 * Unconfirmed charges per budget and isolate: how far a budget can overshoot before the next
 * request waits for the binding again (decision 0025).
 */
export const MAX_UNCONFIRMED_CHARGES = 8;

/** This isolate's ledger of request budgets (per binding and key). */
export const isolateLedger = new BudgetLedger({
  periodMs: RATE_LIMIT_PERIOD_SECONDS * 1000,
  maxPending: MAX_UNCONFIRMED_CHARGES,
  maxEntries: 10_000,
});

/**
 * Charges `charges` against `limiters`; resolves to the first spent budget, or null when the
 * request may proceed. Missing bindings and limiter failures count as "allowed" (fail open).
 * With `behind`, budgets the ledger saw allowed lately are charged in the background and
 * budgets it saw spent are refused without a call; without it every charge is awaited.
 */
export async function firstSpentBudget(
  limiters: Partial<Record<RateLimitBinding, Limiter>>,
  charges: RateLimitCharge[],
  behind?: ChargeBehind,
): Promise<RateLimitCharge | null> {
  const awaited: RateLimitCharge[] = [];
  for (const charge of charges) {
    const limiter = limiters[charge.binding];
    if (!limiter) continue;
    const decision = behind ? behind.ledger.decide(ledgerKey(charge), behind.nowMs()) : "charge-first";
    if (decision === "refuse") return charge;
    if (decision === "charge-behind") behind!.waitUntil.waitUntil(chargeOne(limiter, charge, behind));
    else awaited.push(charge);
  }
  const outcomes = await Promise.all(awaited.map((charge) => chargeOne(limiters[charge.binding]!, charge, behind)));
  const spent = outcomes.findIndex((ok) => !ok);
  return spent < 0 ? null : awaited[spent]!;
}

const ledgerKey = (charge: RateLimitCharge) => `${charge.binding}:${charge.key}`;

/** One `limit()` call, reported to the ledger; resolves to whether the request may proceed. */
async function chargeOne(limiter: Limiter, charge: RateLimitCharge, behind: ChargeBehind | undefined): Promise<boolean> {
  const key = ledgerKey(charge);
  behind?.ledger.begin(key);
  try {
    const { success } = await limiter.limit({ key: charge.key });
    behind?.ledger.settle(key, success, behind.nowMs());
    return success;
  } catch (error) {
    behind?.ledger.settle(key, null, behind.nowMs());
    log("warn", "rate limiter failed; allowing the request", { binding: charge.binding, error: String(error) });
    return true;
  }
}

/** Options of `rateLimit`. */
export type RateLimitOptions = {
  /** Requests this instance leaves alone (another instance, mounted elsewhere, charges them). */
  skip?: (path: string) => boolean;
  /** The error a spent budget throws; default: the API's 429 `rate_limited`. */
  error?: (scope: RateLimitCharge["scope"], retryAfterSeconds: number) => ApiError;
  /** The ledger of budgets charged behind requests; default: this isolate's. */
  ledger?: BudgetLedger;
};

/** Middleware charging every request to its budgets; throws the 429 when one is spent. */
export function rateLimit(options: RateLimitOptions = {}) {
  const error = options.error ?? tooManyRequests;
  return createMiddleware<AppEnv>(async (c, next) => {
    if (options.skip?.(c.req.path)) return next();
    const credential = presentedCredential(c.req.header("authorization"));
    const charges = rateLimitCharges(
      c.req.path,
      c.req.header("cf-connecting-ip") ?? null,
      credential ? await credentialDigest(credential) : null,
    );
    if (charges.length > 0) {
      const ctx = executionContextOf(c);
      const behind = ctx ? { ledger: options.ledger ?? isolateLedger, waitUntil: ctx, nowMs: Date.now } : undefined;
      const spent = await firstSpentBudget(c.env, charges, behind);
      if (spent) throw error(spent.scope, RATE_LIMIT_PERIOD_SECONDS);
    }
    await next();
  });
}

/** Whether `path` belongs to the OCI registry, which charges budgets itself (`registryRateLimit`). */
export function isRegistryPath(path: string): boolean {
  return path === "/v2" || path.startsWith("/v2/");
}

/** The same budgets for `/v2`, refusing in the registry's own format (`TOOMANYREQUESTS`, which docker and buildah retry). */
export const registryRateLimit = rateLimit({
  error: (scope, retryAfterSeconds) =>
    new RegistryError(
      429,
      "TOOMANYREQUESTS",
      `too many requests for this ${scope === "token" ? "credential" : "client address"}; retry after ${retryAfterSeconds} s`,
      { retryAfterSeconds },
      { "retry-after": String(retryAfterSeconds) },
    ),
});
