// What discovery found: one credential that a PAM User record could rotate, described by the values its record
// starts with. Never a secret: the first rotation writes every secret field (the templates' set-by-rotation).
export type DiscoverTargetName = 'aws-iam-access-key' | 'azure-app-secret' | 'wiz-service-account';

export interface Candidate {
  target: DiscoverTargetName;
  /** What identifies the credential's record (IAM user name, application object ID, Wiz client ID). */
  id: string;
  /** Other IDs an existing record may name it by (an application's client ID). */
  aliases: string[];
  title: string;
  /** The record's login, when the target has one. */
  login?: string;
  /** Template fields and settings whose value is not the template's placeholder, by label. */
  values: Record<string, string>;
  /** One line for the record's notes and the report: key IDs, ages, last use, expiry. */
  notes: string;
  /** Something the admin must settle before the first rotation succeeds. */
  warning?: string;
}

/** Why a found credential is not emitted. */
export interface Skipped {
  id: string;
  reason: 'has-record' | 'not-allowed' | 'is-admin';
  detail: string;
}

export interface Discovery {
  candidates: Candidate[];
  skipped: Skipped[];
  /** Requests made to the target's service. */
  requests: number;
}

const DAY = 86_400_000;

/** `2025-03-01 (412 d ago)` */
export function ageText(date: Date | undefined, now = Date.now()): string {
  if (!date || Number.isNaN(date.getTime())) return 'unknown';
  const days = Math.floor((now - date.getTime()) / DAY);
  return days >= 0 ? `${date.toISOString().slice(0, 10)} (${days} d ago)` : `${date.toISOString().slice(0, 10)} (in ${-days} d)`;
}
