// The figures every bench reports for a set of samples: the median, the quartiles and the range.

export interface Stats {
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
}

/** The `q` quantile of sorted values, interpolated between neighbours. */
export function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  return sorted[lo]! + (sorted[Math.ceil(pos)]! - sorted[lo]!) * (pos - lo);
}

/**
 * The figures of `values`, rounded to `decimals`. A NaN (a figure this platform cannot measure, such as CPU time off
 * Linux) is left out, not sorted in; with none left, every figure is NaN.
 */
export function stats(values: number[], decimals = 3): Stats {
  const s = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  const r = (n: number) => Math.round(n * 10 ** decimals) / 10 ** decimals;
  return { median: r(quantile(s, 0.5)), p25: r(quantile(s, 0.25)), p75: r(quantile(s, 0.75)), min: r(s[0]!), max: r(s.at(-1)!) };
}
