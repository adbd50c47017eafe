// The two decisions a Wiz rotation makes about time: rotate on this run or not, and which expiry the new secret
// gets. Pure (the clock is an argument), so every rule is tested without a network.

const DAY_MS = 86_400_000;

export interface ScheduleInput {
  /** The account's expiry as Wiz reports it (ISO-8601), or null when it never expires. */
  expiresAt: string | null;
  now: Date;
  /** `rotate_within_days`: 0 rotates on every run. */
  withinDays: number;
  /**
   * An earlier run on this record stopped while Wiz was replacing the secret: the account may hold a secret that
   * nobody knows, so this run rotates whatever the expiry says.
   */
  interrupted: boolean;
}

export type Decision = { rotate: true; reason: string } | { rotate: false; reason: string };

/** "3.5 days", "5 hours", "40 minutes": how far away an expiry is, for the log. */
export function formatSpan(ms: number): string {
  const abs = Math.abs(ms);
  if (abs >= DAY_MS) return `${(ms / DAY_MS).toFixed(1).replace(/\.0$/, '')} days`;
  if (abs >= 3_600_000) return `${Math.round(ms / 3_600_000)} hours`;
  return `${Math.round(ms / 60_000)} minutes`;
}

export function decideRotation(p: ScheduleInput): Decision {
  if (p.interrupted) return { rotate: true, reason: 'an earlier run stopped while Wiz was replacing the secret, so the secret Wiz holds may be one nobody knows' };
  if (p.withinDays === 0) return { rotate: true, reason: 'rotate_within_days is 0: every run rotates' };
  if (p.expiresAt === null) return { rotate: true, reason: 'the account has no expiry; the rotation gives it one' };
  const at = Date.parse(p.expiresAt);
  if (Number.isNaN(at)) return { rotate: true, reason: `its expiry "${p.expiresAt}" cannot be read` };
  const left = at - p.now.getTime();
  if (left <= p.withinDays * DAY_MS) {
    return { rotate: true, reason: `it expires at ${p.expiresAt}, in ${formatSpan(left)}: within rotate_within_days (${p.withinDays})` };
  }
  return { rotate: false, reason: `it expires at ${p.expiresAt}, in ${formatSpan(left)}: more than rotate_within_days (${p.withinDays}) away` };
}

/** Has the expiry passed (an expired account cannot get tokens)? An unreadable one counts as not passed. */
export function isExpired(expiresAt: string | null, now: Date): boolean {
  if (expiresAt === null) return false;
  const at = Date.parse(expiresAt);
  return !Number.isNaN(at) && at <= now.getTime();
}

/**
 * The expiry each rotation sets: now plus the lifetime, to the second, in the form Wiz writes
 * (`2025-03-01T12:34:56Z`). Computed once per run, so the record's `expires` and the account's agree.
 */
export function newExpiry(now: Date, lifetimeDays: number): string {
  const seconds = Math.floor(now.getTime() / 1000) * 1000;
  return new Date(seconds + lifetimeDays * DAY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Do two ISO-8601 instants name the same second? (Wiz may write `...Z` or `...+00:00`, with or without fractions.) */
export function sameInstant(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  const x = Date.parse(a);
  const y = Date.parse(b);
  return !Number.isNaN(x) && Math.floor(x / 1000) === Math.floor(y / 1000);
}
