// wrangler.toml's environments: bindings and vars are not inherited by `[env.*]`, so a binding
// added at the top level and forgotten in staging or production breaks only the deploy. These
// checks catch that offline, with the other invariants `npm run deploy` relies on.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "smol-toml";
import { describe, expect, it } from "vitest";

type Binding = Record<string, unknown>;
type Section = {
  name?: string;
  vars?: Record<string, string>;
  d1_databases?: Binding[];
  r2_buckets?: Binding[];
  durable_objects?: { bindings?: Binding[] };
  ratelimits?: Binding[];
  observability?: { enabled?: boolean };
};
const config = parse(readFileSync(path.resolve(import.meta.dirname, "../../wrangler.toml"), "utf8")) as Section & {
  env?: Record<string, Section>;
};
const ENVIRONMENTS = ["staging", "production"] as const;

// What must match between the top level and an environment: the binding's name and how it is
// used; resource names (database, bucket) and rate-limit namespaces must differ instead.
function shape(section: Section) {
  return {
    // Values may differ (LOG_LEVEL is quieter locally); every key must be there.
    vars: Object.keys(section.vars ?? {}).sort(),
    d1: (section.d1_databases ?? []).map((b) => ({ binding: b.binding, migrations_dir: b.migrations_dir })),
    r2: (section.r2_buckets ?? []).map((b) => b.binding),
    durableObjects: (section.durable_objects?.bindings ?? []).map((b) => ({ name: b.name, class_name: b.class_name })),
    ratelimits: (section.ratelimits ?? []).map((b) => ({ name: b.name, simple: b.simple })),
  };
}

describe("wrangler.toml environments", () => {
  it.each(ENVIRONMENTS)("%s repeats every binding and var of the top level", (name) => {
    const env = config.env?.[name];
    expect(env, `[env.${name}] is missing`).toBeDefined();
    expect(shape(env!)).toEqual(shape(config));
  });

  it("gives each environment its own Worker, database, buckets and rate-limit namespaces", () => {
    const sections = [config, ...ENVIRONMENTS.map((n) => config.env![n]!)];
    const names = (pick: (s: Section) => unknown[]) => sections.flatMap(pick);
    const unique = (values: unknown[]) => expect(new Set(values).size).toBe(values.length);
    unique(sections.map((s) => s.name ?? config.name));
    unique(names((s) => (s.d1_databases ?? []).map((b) => b.database_name)));
    unique(names((s) => (s.r2_buckets ?? []).map((b) => b.bucket_name)));
    unique(names((s) => (s.ratelimits ?? []).map((b) => b.namespace_id)));
    for (const id of names((s) => (s.ratelimits ?? []).map((b) => b.namespace_id))) expect(String(id)).toMatch(/^[1-9][0-9]*$/);
  });

  it("has no database id, so wrangler finds or creates the database by name (and local runs need none)", () => {
    for (const section of [config, ...ENVIRONMENTS.map((n) => config.env![n]!)]) {
      for (const db of section.d1_databases ?? []) expect(db).not.toHaveProperty("database_id");
    }
  });

  it("enables Workers observability for every environment (inherited from the top level)", () => {
    expect(config.observability?.enabled).toBe(true);
    for (const name of ENVIRONMENTS) expect(config.env![name]!.observability?.enabled ?? true).toBe(true);
  });
});
