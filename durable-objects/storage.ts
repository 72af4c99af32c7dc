/**
 * Shared plumbing of Kiln's Durable Objects: a versioned, ordered list of SQLite migrations
 * run once in the constructor, and a table of named timers served by the object's one alarm
 * (timers survive eviction; alarm handlers must be idempotent because alarms are
 * at-least-once).
 */

/** Runs the migrations not yet applied, in order. Call inside `blockConcurrencyWhile`. */
export function migrate(sql: SqlStorage, migrations: readonly string[]): void {
  sql.exec("CREATE TABLE IF NOT EXISTS _schema (version INTEGER NOT NULL)");
  const row = sql.exec<{ version: number }>("SELECT version FROM _schema").toArray()[0];
  const applied = row?.version ?? 0;
  if (!row) sql.exec("INSERT INTO _schema (version) VALUES (0)");
  for (let v = applied; v < migrations.length; v++) {
    sql.exec(migrations[v]!);
    sql.exec("UPDATE _schema SET version = ?", v + 1);
  }
}

/** The SQL of the timers table, for an object's first migration. */
export const TIMERS_TABLE = "CREATE TABLE timers (name TEXT PRIMARY KEY, due_ms INTEGER NOT NULL);";

/** Named timers in SQLite, multiplexed onto the object's single alarm. */
export class Timers {
  readonly #sql: SqlStorage;
  readonly #storage: DurableObjectStorage;

  constructor(storage: DurableObjectStorage) {
    this.#sql = storage.sql;
    this.#storage = storage;
  }

  /** Sets (or moves) timer `name` to fire at `dueMs`. Call `arm()` after the last change. */
  set(name: string, dueMs: number): void {
    this.#sql.exec(
      "INSERT INTO timers (name, due_ms) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET due_ms = excluded.due_ms",
      name,
      Math.floor(dueMs),
    );
  }

  /** Removes timer `name` if set. */
  clear(name: string): void {
    this.#sql.exec("DELETE FROM timers WHERE name = ?", name);
  }

  /** When timer `name` fires, or null. */
  get(name: string): number | null {
    return this.#sql.exec<{ due_ms: number }>("SELECT due_ms FROM timers WHERE name = ?", name).toArray()[0]?.due_ms ?? null;
  }

  /** Names of the timers due at `nowMs`, earliest first. */
  due(nowMs: number): string[] {
    return this.#sql
      .exec<{ name: string }>("SELECT name FROM timers WHERE due_ms <= ? ORDER BY due_ms, name", nowMs)
      .toArray()
      .map((r) => r.name);
  }

  /** Points the alarm at the earliest timer, or removes it when none is left. */
  async arm(): Promise<void> {
    const next = this.#sql.exec<{ due: number | null }>("SELECT min(due_ms) AS due FROM timers").toArray()[0]?.due ?? null;
    if (next === null) {
      await this.#storage.deleteAlarm();
      return;
    }
    const current = await this.#storage.getAlarm();
    if (current !== next) await this.#storage.setAlarm(next);
  }
}

/** A random id: `prefix` + "-" + 26 lowercase base32 characters (130 bits). */
export function newId(prefix: string): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  const bytes = crypto.getRandomValues(new Uint8Array(26));
  return `${prefix}-${[...bytes].map((b) => alphabet[b & 31]).join("")}`;
}
