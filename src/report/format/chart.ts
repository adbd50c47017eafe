// The expiry timeline of the HTML report: an inline SVG bar chart of how many credentials expire in each week
// from today, stacked by target, with a first bar for those already expired and a last one for those beyond
// the chart. A histogram rather than a line per record, so a fleet of a thousand records stays one screen tall.
// The SVG uses presentation attributes and classes only (no style attributes), as the page's CSP allows.
import type { ScriptName } from '../../targets/record-shape.js';
import { DAY_MS, type ReportRow } from '../model.js';
import { TARGET_SHORT } from './cells.js';

export const CHART_WEEKS = 26;
const TARGETS: ScriptName[] = ['aws-iam-access-key', 'aws-ecr-pull-secret', 'azure-app-secret', 'wiz-service-account'];

export interface Bucket {
  label: string;
  /** Counts by target. */
  counts: Record<ScriptName, number>;
  kind: 'expired' | 'week' | 'later';
}

/** The chart's buckets: expired, each of the next CHART_WEEKS weeks, later. Rows without an expiry are left out. */
export function buckets(rows: readonly ReportRow[], now: Date): Bucket[] {
  const empty = (): Record<ScriptName, number> => ({ 'aws-iam-access-key': 0, 'aws-ecr-pull-secret': 0, 'azure-app-secret': 0, 'wiz-service-account': 0 });
  const out: Bucket[] = [{ label: 'expired', counts: empty(), kind: 'expired' }];
  for (let w = 0; w < CHART_WEEKS; w++) out.push({ label: new Date(now.getTime() + w * 7 * DAY_MS).toISOString().slice(0, 10), counts: empty(), kind: 'week' });
  out.push({ label: 'later', counts: empty(), kind: 'later' });
  for (const r of rows) {
    if (!r.expires || !r.target) continue;
    const left = Date.parse(r.expires) - now.getTime();
    const index = left <= 0 ? 0 : Math.min(CHART_WEEKS + 1, 1 + Math.floor(left / (7 * DAY_MS)));
    out[index]!.counts[r.target] += 1;
  }
  return out;
}

const total = (b: Bucket) => TARGETS.reduce((n, t) => n + b.counts[t], 0);

/** The SVG markup. Every text in it is made here from dates and counts: nothing from a record reaches it. */
export function expiryChart(rows: readonly ReportRow[], now: Date, warnDays: number): string {
  const bs = buckets(rows, now);
  const width = 900;
  const height = 260;
  const left = 40;
  const bottom = 40;
  const top = 20;
  const plotH = height - top - bottom;
  const barW = (width - left - 10) / bs.length;
  const max = Math.max(1, ...bs.map(total));
  const y = (n: number) => top + plotH - (n / max) * plotH;
  const parts: string[] = [];
  // The warning window, shaded: what expires in it shows as "expiring" in the table.
  const warnWeeks = Math.min(CHART_WEEKS, warnDays / 7);
  if (warnWeeks > 0) parts.push(`<rect class="warn-window" x="${(left + barW).toFixed(1)}" y="${top}" width="${(warnWeeks * barW).toFixed(1)}" height="${plotH}"/>`);
  for (const tick of [0, Math.ceil(max / 2), max]) {
    parts.push(`<line class="grid" x1="${left}" x2="${width - 10}" y1="${y(tick).toFixed(1)}" y2="${y(tick).toFixed(1)}"/>`);
    parts.push(`<text class="axis" x="${left - 6}" y="${(y(tick) + 4).toFixed(1)}" text-anchor="end">${tick}</text>`);
  }
  bs.forEach((b, i) => {
    const x = left + i * barW;
    let base = 0;
    for (const t of TARGETS) {
      const n = b.counts[t];
      if (n === 0) continue;
      const tip = `${b.kind === 'week' ? `week of ${b.label}` : b.label}: ${n} ${TARGET_SHORT[t]}`;
      parts.push(
        `<rect class="bar ${TARGET_SHORT[t]}${b.kind === 'expired' ? ' expired' : ''}" x="${(x + 1).toFixed(1)}" y="${y(base + n).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(y(base) - y(base + n)).toFixed(1)}"><title>${tip}</title></rect>`,
      );
      base += n;
    }
    // A date under every fourth week, and the two ends.
    if (b.kind !== 'week' || (i > 1 && (i - 1) % 4 === 0)) parts.push(`<text class="axis" x="${(x + barW / 2).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle">${b.kind === 'week' ? b.label.slice(5) : b.label}</text>`);
  });
  // Today: the edge between the expired bar and the first week.
  parts.push(`<line class="today" x1="${(left + barW).toFixed(1)}" x2="${(left + barW).toFixed(1)}" y1="${top - 6}" y2="${top + plotH}"/>`);
  parts.push(`<text class="axis" x="${(left + barW + 4).toFixed(1)}" y="${top - 8}">today ${now.toISOString().slice(0, 10)}</text>`);
  const legend = TARGETS.map((t, i) => `<rect class="bar ${TARGET_SHORT[t]}" x="${width - 345 + i * 85}" y="${height - 16}" width="10" height="10"/><text class="axis" x="${width - 331 + i * 85}" y="${height - 7}">${TARGET_SHORT[t]}</text>`);
  const withExpiry = bs.reduce((n, b) => n + total(b), 0);
  return (
    `<svg id="expiry-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="chart-title">` +
    `<title id="chart-title">Credentials expiring per week: ${withExpiry} with an expiry, ${bs[0] ? total(bs[0]) : 0} already expired</title>` +
    parts.join('') +
    legend.join('') +
    `</svg>`
  );
}
