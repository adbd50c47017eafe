// The report's exit code, so a pipeline or a cron can gate on it. 0 to 3 mean what they mean for every script
// (0 nothing wrong; 1 a bug; 2 rejected before any request: a usage error, no config; 3 Keeper could not be
// read). A report that was made and found something is 8 plus one bit per kind of finding, so a script can tell
// them apart: `code & 1` expired, `code & 2` a last run that failed, `code & 4` a target that disagrees, a record
// that cannot be read, or a check that could not finish.
import type { ScriptName } from '../targets/record-shape.js';
import type { ReportRow, Status } from './model.js';

export const REPORT_EXIT = {
  /** Set whenever the report found something: 8 to 15. */
  found: 8,
  expired: 1,
  failing: 2,
  disagrees: 4,
} as const;

export interface Summary {
  records: number;
  byTarget: Record<ScriptName | 'mixed', number>;
  byStatus: Record<Status, number>;
  /** Rows whose check ran (with --check). */
  checked: number;
  exitCode: number;
}

export function summarise(rows: readonly ReportRow[], checked: boolean): Summary {
  const byTarget: Summary['byTarget'] = { 'aws-iam-access-key': 0, 'aws-ecr-pull-secret': 0, 'azure-app-secret': 0, 'wiz-service-account': 0, mixed: 0 };
  const byStatus: Summary['byStatus'] = { expired: 0, failing: 0, disagrees: 0, unreadable: 0, expiring: 0, ok: 0 };
  let bits = 0;
  for (const row of rows) {
    byTarget[row.target ?? 'mixed'] += 1;
    byStatus[row.status] += 1;
    // Every finding counts, not only the row's worst: an expired record whose last run also failed sets both bits.
    for (const p of row.problems) {
      if (p.status === 'expired') bits |= REPORT_EXIT.expired;
      else if (p.status === 'failing') bits |= REPORT_EXIT.failing;
      else if (p.status === 'disagrees' || p.status === 'unreadable') bits |= REPORT_EXIT.disagrees;
    }
  }
  return { records: rows.length, byTarget, byStatus, checked: checked ? rows.filter((r) => r.check).length : 0, exitCode: bits === 0 ? 0 : REPORT_EXIT.found | bits };
}
