// Applies the drizzle-generated D1 migrations (read in vitest.config.ts) before each test file,
// exactly as `wrangler d1 migrations apply` does for `npm start`.
import { applyD1Migrations, env } from "cloudflare:test";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
