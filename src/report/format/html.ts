// The HTML format: one self-contained page an admin can open or attach to a ticket. It loads nothing (no
// script, no font, no image, no link), and its Content-Security-Policy says so to the browser: nothing may be
// fetched, no script may run, and the one stylesheet is allowed by its hash. Record values come from the
// vault's editors, who may be less trusted than the admin reading the page: each one is escaped for HTML after
// its control and bidi characters are made visible, so a title can neither add markup nor reorder the row.
import { createHash } from 'node:crypto';
import { escapeControls } from '../../log.js';
import { VERSION } from '../../version.js';
import { STATUSES, type ReportRow } from '../model.js';
import { checkCell, day, expiresCell, lastRunCell, numberCell, targetCell } from './cells.js';
import { expiryChart } from './chart.js';
import type { RenderInput } from './render.js';
import { summaryLine } from './table.js';

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for an HTML element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return escapeControls(text).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

const STYLE = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#5b6475;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:0 0 16px}
.card{border:1px solid #d7dce5;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{display:block;font-size:22px}
.card.expired b,.card.failing b{color:#b42318}.card.disagrees b,.card.unreadable b{color:#7a2e9e}.card.expiring b{color:#b54708}.card.ok b{color:#067647}
table{border-collapse:collapse;width:100%;margin-top:16px}
th,td{border-bottom:1px solid #e4e7ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f7;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
tr.expired td.status,tr.failing td.status{color:#b42318;font-weight:600}
tr.disagrees td.status,tr.unreadable td.status{color:#7a2e9e;font-weight:600}
tr.expiring td.status{color:#b54708;font-weight:600}
tr.ok td.status{color:#067647}
ul.problems{margin:0;padding-left:16px;color:#5b6475}
svg{max-width:100%;height:auto;border:1px solid #e4e7ec;border-radius:6px}
.bar.aws{fill:#f79009}.bar.ecr{fill:#12b76a}.bar.azure{fill:#2e90fa}.bar.wiz{fill:#7a5af8}.bar.expired{stroke:#b42318;stroke-width:2}
.warn-window{fill:#fef0c7}.grid{stroke:#eaecf0}.today{stroke:#b42318;stroke-dasharray:4 3}
.axis{font-size:11px;fill:#5b6475}
`;

const HEADERS = ['Status', 'Target', 'Record', 'Title', 'Principal', 'Credential', 'Created', 'Expires', 'Age (days)', 'Days left', 'Last run', 'Last message', 'Check', 'Findings'];

function rowHtml(r: ReportRow): string {
  const td = (text: string, cls = '') => `<td${cls ? ` class="${cls}"` : ''}>${escapeHtml(text)}</td>`;
  const problems = r.problems.length ? `<ul class="problems">${r.problems.map((p) => `<li>${escapeHtml(`${p.status}: ${p.text}`)}</li>`).join('')}</ul>` : '';
  return (
    `<tr class="${r.status}" data-record="${escapeHtml(r.recordUid)}">` +
    td(r.status, 'status') +
    td(targetCell(r)) +
    td(r.recordUid, 'id') +
    td(r.title, 'title') +
    td(r.principal ?? '', 'id') +
    td(r.credentialId ?? '', 'id') +
    td(day(r.created)) +
    td(expiresCell(r)) +
    td(numberCell(r.ageDays), 'num') +
    td(numberCell(r.daysToExpiry), 'num') +
    td(lastRunCell(r)) +
    td(r.lastRotation?.message ?? '', 'message') +
    td(checkCell(r)) +
    `<td>${problems}</td></tr>`
  );
}

export function renderHtml({ rows, summary, generatedAt, options }: RenderInput): string {
  // The policy allows exactly this stylesheet: a tampered copy of the page, or injected markup, gets no style and no script.
  const styleHash = createHash('sha256').update(STYLE).digest('base64');
  const csp = `default-src 'none'; style-src 'sha256-${styleHash}'; img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'`;
  const cards = STATUSES.map((s) => `<div class="card ${s}"><b>${summary.byStatus[s]}</b>${s}</div>`).join('');
  const stated = [
    `generated ${generatedAt.toISOString()} by keeper-rotate ${escapeHtml(VERSION)}`,
    `${summary.records} record(s)`,
    options.check ? `${summary.checked} checked on their targets` : 'targets not checked (--check)',
    `expiring: within ${options.warnDays} day(s)`,
    ...(options.failDays > 0 ? [`counted as expired within ${options.failDays} day(s)`] : []),
    ...(options.maxKeyAgeDays !== undefined ? [`AWS keys expire (*) ${options.maxKeyAgeDays} day(s) after CreateDate`] : []),
    `exit code ${summary.exitCode}`,
  ].join(' · ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>keeper-rotate fleet report ${generatedAt.toISOString().slice(0, 10)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>keeper-rotate fleet report</h1>
<p class="meta">${stated}</p>
<div class="cards">${cards}</div>
<h2>Expiry timeline</h2>
${expiryChart(rows, generatedAt, options.warnDays)}
<h2>Records</h2>
<p class="meta">${escapeHtml(summaryLine(summary))}</p>
<table id="records">
<thead><tr>${HEADERS.map((h) => `<th>${h}</th>`).join('')}</tr></thead>
<tbody>
${rows.map(rowHtml).join('\n')}
</tbody>
</table>
</body>
</html>
`;
}
