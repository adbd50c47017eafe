// The terminal table: one line per record, worst first, then each record's findings and a summary line. Every
// value from a record passes escapeControls, so a title holding an escape sequence or a bidi override prints
// as visible `\u001b`, `\u202e` instead of rewriting the terminal.
import { escapeControls } from '../../log.js';
import type { ReportRow } from '../model.js';
import type { Summary } from '../verdict.js';
import { checkCell, cut, day, expiresCell, lastRunCell, numberCell, targetCell } from './cells.js';
import type { RenderInput } from './render.js';

const COLUMNS: Array<[string, (r: ReportRow) => string, number]> = [
  ['STATUS', (r) => r.status, 10],
  ['TARGET', targetCell, 6],
  ['RECORD', (r) => r.recordUid, 22],
  ['TITLE', (r) => r.title, 32],
  ['CREDENTIAL', (r) => r.credentialId ?? '', 36],
  ['CREATED', (r) => day(r.created), 10],
  ['EXPIRES', expiresCell, 11],
  ['AGE', (r) => numberCell(r.ageDays), 5],
  ['LEFT', (r) => numberCell(r.daysToExpiry), 5],
  ['LAST RUN', lastRunCell, 40],
  ['CHECK', checkCell, 24],
];

export function summaryLine(s: Summary): string {
  const t = s.byTarget;
  const st = s.byStatus;
  const targets = `aws ${t['aws-iam-access-key']}, ecr ${t['aws-ecr-pull-secret']}, azure ${t['azure-app-secret']}, wiz ${t['wiz-service-account']}${t.mixed ? `, mixed ${t.mixed}` : ''}`;
  const checked = s.checked ? `, ${s.checked} checked on their targets` : '';
  return `report: ${s.records} record(s) (${targets})${checked}; ${st.expired} expired, ${st.failing} failing, ${st.disagrees} disagreeing, ${st.unreadable} unreadable, ${st.expiring} expiring soon, ${st.ok} ok; exit ${s.exitCode}`;
}

export function renderTable({ rows, summary }: RenderInput): string {
  const cells = rows.map((r) => COLUMNS.map(([, get, max]) => cut(escapeControls(get(r)), max)));
  const widths = COLUMNS.map(([name], i) => Math.max(name.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(COLUMNS.map(([name]) => name)), ...cells.map(line)];
  const findings = rows.filter((r) => r.problems.length > 0);
  if (findings.length) {
    out.push('', 'Findings:');
    for (const r of findings) for (const p of r.problems) out.push(escapeControls(`  ${r.recordUid} ${cut(r.title, 40)}: ${p.status}: ${p.text}`));
  }
  if (rows.some((r) => r.expiresFrom === 'max-age')) out.push('', '* AWS keys never expire: EXPIRES is CreateDate plus --max-key-age-days.');
  out.push('', summaryLine(summary));
  return out.join('\n') + '\n';
}
