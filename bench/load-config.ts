/** The settings of `npm run bench:load`, from KILN_LOAD_* variables (load.ts says what each class does). */

/** Seconds of mixed traffic. */
export const DURATION_S = Number(process.env.KILN_LOAD_SECONDS ?? 60);
/** Seconds of the `GET /healthz` baseline. */
export const BASELINE_S = Number(process.env.KILN_LOAD_BASELINE_SECONDS ?? 15);
/** Well-behaved API clients, one token and one address each. */
export const API_CLIENTS = 6;
/** autocannon connections per traffic class. */
export const CONNECTIONS = { api: 12, badges: 8, runner: 4, abusive: 16 };
/** Fixed request rates of the well-behaved classes; the abusive client has none. */
export const RATES = {
  api: Number(process.env.KILN_LOAD_API_RPS ?? 24),
  badges: Number(process.env.KILN_LOAD_BADGE_RPS ?? 24),
  runner: Number(process.env.KILN_LOAD_EVENT_RPS ?? 12),
};
/** Factor on wrangler.toml's request budgets, sized for a Cloudflare location rather than one machine. */
export const BUDGET_SCALE = Number(process.env.KILN_LOAD_BUDGET_SCALE ?? 0.05);
