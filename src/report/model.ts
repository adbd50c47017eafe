// The report's model: one row per PAM User record that one of our targets manages, built from the record's plain
// fields only (plain-fields.ts), with what they say about the credential: which target, which credential, when it
// was made and when it expires, and how the last run ended. Everything here is computed from one vault read and
// the clock; whether the target agrees is added by check.ts.
import type { VaultRecord } from '../keeper/vault.js';
import { type ScriptName, scriptsFor } from '../targets/record-shape.js';
import { FIELDS as AWS } from '../targets/aws-iam-access-key/index.js';
import { FIELDS as AZURE } from '../targets/azure-app-secret/index.js';
import { FIELDS as WIZ } from '../targets/wiz-service-account/index.js';
import { OUTCOME_FIELDS } from '../pipeline/outcome.js';
import { FIELDS as ECR } from '../targets/aws-ecr-pull-secret/index.js';
import { MAX_VALUE_CHARS, readPlain } from './plain-fields.js';

export const DAY_MS = 86_400_000;

/** What the report says of a record, worst first: the order rows sort in and the one status a row shows. */
export const STATUSES = ['expired', 'failing', 'disagrees', 'unreadable', 'expiring', 'ok'] as const;
export type Status = (typeof STATUSES)[number];

export interface Problem {
  status: Exclude<Status, 'ok'>;
  text: string;
}

export interface LastRotation {
  /** ISO-8601 UTC, as the record says (undefined when absent or not a time). */
  at: string | undefined;
  exit: number | undefined;
  error: string | undefined;
  message: string | undefined;
}

export interface CheckResult {
  /** agrees: the credential is on the target and nothing is orphaned; unchecked: the check could not finish. */
  state: 'agrees' | 'disagrees' | 'unchecked';
  findings: string[];
  /** The error code when the check stopped on one. */
  code?: string;
}

export interface ReportRow {
  recordUid: string;
  title: string;
  /** Undefined when the record carries the fields of more than one target (a run refuses it: RECORD_WRONG_SCRIPT). */
  target: ScriptName | undefined;
  /** What holds the credential: the IAM user, the application's object ID, the Wiz service account's client ID. */
  principal: string | undefined;
  /** The credential the record holds: the access key ID, the client secret's key ID, the Wiz client ID. */
  credentialId: string | undefined;
  created: string | undefined;
  expires: string | undefined;
  /** Where `expires` came from: the record, or `--max-key-age-days` for a credential that never expires. */
  expiresFrom: 'record' | 'max-age' | undefined;
  ageDays: number | undefined;
  daysToExpiry: number | undefined;
  lastRotation: LastRotation | undefined;
  check: CheckResult | undefined;
  problems: Problem[];
  status: Status;
}

export interface ModelOptions {
  now: Date;
  /** A credential expiring within this many days is `expiring`. */
  warnDays: number;
  /** A credential expiring within this many days counts as expired (0: only one already expired). */
  failDays: number;
  /** AWS keys never expire: with this, one older than this many days counts as expiring at CreateDate + days. */
  maxKeyAgeDays: number | undefined;
}

const PLACEHOLDERS = new Set(['set-by-rotation', AZURE.objectId.example, WIZ.login.example, AWS.login.example]);

/** A field's value, with the templates' placeholders read as absent. */
function value(record: VaultRecord, label: string): string | undefined {
  const v = readPlain(record.data, label);
  return v === undefined || PLACEHOLDERS.has(v) ? undefined : v;
}

/** An ISO time the record holds, normalised; `problem` gets a finding when the field holds something else. */
function time(record: VaultRecord, label: string, problems: Problem[]): string | undefined {
  const raw = value(record, label);
  if (raw === undefined) return undefined;
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) {
    problems.push({ status: 'unreadable', text: `"${label}" holds no date` });
    return undefined;
  }
  return new Date(ms).toISOString();
}

/** The target a record was made for, or the targets it mixes (scriptsFor is what every script checks it by). */
export function recognise(record: VaultRecord): ScriptName[] {
  if (record.type !== 'pamUser') return [];
  return [...scriptsFor(record.data).keys()];
}

function lastRotation(record: VaultRecord, problems: Problem[]): LastRotation | undefined {
  const exitText = value(record, OUTCOME_FIELDS.exit.label);
  const at = time(record, OUTCOME_FIELDS.at.label, problems);
  const error = value(record, OUTCOME_FIELDS.error.label);
  const message = value(record, OUTCOME_FIELDS.message.label);
  if (exitText === undefined && at === undefined && error === undefined && message === undefined) return undefined;
  let exit: number | undefined;
  if (exitText !== undefined) {
    if (/^[0-5]$/.test(exitText)) exit = Number(exitText);
    else problems.push({ status: 'unreadable', text: `"${OUTCOME_FIELDS.exit.label}" holds no exit code (0 to 5)` });
  }
  return { at, exit, error: error?.slice(0, 64), message: message?.slice(0, MAX_VALUE_CHARS) };
}

/** One row for a record of one of our targets, or undefined for any other record. */
export function buildRow(record: VaultRecord, options: ModelOptions): ReportRow | undefined {
  const targets = recognise(record);
  if (targets.length === 0) return undefined;
  const problems: Problem[] = [];
  const target = targets.length === 1 ? targets[0] : undefined;
  if (!target) problems.push({ status: 'unreadable', text: `the record carries the fields of ${targets.join(' and ')}; a run refuses it (RECORD_WRONG_SCRIPT)` });
  let principal: string | undefined;
  let credentialId: string | undefined;
  let created: string | undefined;
  let expires: string | undefined;
  let expiresFrom: ReportRow['expiresFrom'];
  if (target === 'aws-iam-access-key') {
    principal = value(record, AWS.login.label);
    credentialId = value(record, AWS.keyId.label);
    created = time(record, AWS.createDate.label, problems);
    if (created && options.maxKeyAgeDays !== undefined) {
      expires = new Date(Date.parse(created) + options.maxKeyAgeDays * DAY_MS).toISOString();
      expiresFrom = 'max-age';
    }
  } else if (target === 'azure-app-secret') {
    principal = value(record, AZURE.objectId.label);
    credentialId = value(record, AZURE.secretId.label);
    expires = time(record, AZURE.expires.label, problems);
  } else if (target === 'aws-ecr-pull-secret') {
    // Registry logins last 12 hours and each run refreshes them: only an expired one is a finding, never "expiring".
    principal = value(record, 'ecr_registries') ?? value(record, 'ecr_regions');
    credentialId = value(record, ECR.tokenId.label);
    expires = time(record, ECR.expires.label, problems);
  } else if (target === 'wiz-service-account') {
    principal = value(record, WIZ.login.label);
    credentialId = principal;
    expires = time(record, WIZ.expires.label, problems);
  }
  if (expires && !expiresFrom) expiresFrom = 'record';
  const now = options.now.getTime();
  const ageDays = created ? Math.floor((now - Date.parse(created)) / DAY_MS) : undefined;
  const left = expires ? Date.parse(expires) - now : undefined;
  // Whole days left, rounded down: a credential with 5 hours left has 0 days, one already expired a negative count.
  const daysToExpiry = left === undefined ? undefined : Math.floor(left / DAY_MS);
  const policy = expiresFrom === 'max-age' ? ` (older than --max-key-age-days ${options.maxKeyAgeDays})` : '';
  if (left !== undefined && left <= 0) problems.push({ status: 'expired', text: `expired ${expires}${policy}` });
  else if (daysToExpiry !== undefined && options.failDays > 0 && left! <= options.failDays * DAY_MS) {
    problems.push({ status: 'expired', text: `expires ${expires}, within --fail-days ${options.failDays}${policy}` });
  } else if (daysToExpiry !== undefined && target !== 'aws-ecr-pull-secret' && left! <= options.warnDays * DAY_MS) problems.push({ status: 'expiring', text: `expires ${expires}, in ${daysToExpiry} day(s)${policy}` });
  const last = lastRotation(record, problems);
  if (last?.exit !== undefined && last.exit !== 0) problems.push({ status: 'failing', text: `the last run exited ${last.exit}${last.error ? ` (${last.error})` : ''}` });
  return {
    recordUid: record.uid,
    title: record.title.length > MAX_VALUE_CHARS ? `${record.title.slice(0, MAX_VALUE_CHARS)}…` : record.title,
    target,
    principal,
    credentialId,
    created,
    expires,
    expiresFrom,
    ageDays,
    daysToExpiry,
    lastRotation: last,
    check: undefined,
    problems,
    status: worst(problems),
  };
}

export function worst(problems: readonly Problem[]): Status {
  let best: Status = 'ok';
  for (const p of problems) if (STATUSES.indexOf(p.status) < STATUSES.indexOf(best)) best = p.status;
  return best;
}

/** Rows worst first, then soonest to expire, then by title: what needs a person comes first. */
export function sortRows(rows: ReportRow[]): ReportRow[] {
  const expiry = (r: ReportRow) => (r.expires ? Date.parse(r.expires) : Number.POSITIVE_INFINITY);
  return rows.sort((a, b) => STATUSES.indexOf(a.status) - STATUSES.indexOf(b.status) || expiry(a) - expiry(b) || a.title.localeCompare(b.title) || a.recordUid.localeCompare(b.recordUid));
}
