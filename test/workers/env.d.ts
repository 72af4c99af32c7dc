// Test-only bindings, added to the generated Env that `cloudflare:test` exposes.
declare namespace Cloudflare {
  interface Env {
    /** D1 migrations, injected by vitest.config.ts for the setup file. */
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}
