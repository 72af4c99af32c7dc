/** D1 binds at most 100 parameters per statement; `IN (...)` lists are split to stay under it. */

/** Items per `IN (...)` list, leaving room for the statement's other parameters. */
export const D1_IN_CHUNK = 90;

/** Splits `items` into runs of at most `size`. */
export function chunk<T>(items: readonly T[], size = D1_IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
