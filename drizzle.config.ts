import { defineConfig } from "drizzle-kit";

// drizzle-kit only generates SQL; `wrangler d1 migrations apply` is the one thing that runs it.
export default defineConfig({
  dialect: "sqlite",
  schema: "./workers/db/schema/*.ts",
  out: "./migrations",
});
