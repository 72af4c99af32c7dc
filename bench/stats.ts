/** Summary statistics the benchmarks report: medians, percentiles and rounding for the JSON line. */

/** The median of `xs` (the mean of the two middle values when their count is even). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The nearest-rank `p`th percentile of `xs` (0 when `xs` is empty). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** `x` rounded to three decimals, as the benchmarks' JSON lines carry it. */
export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
