// Which of an app's client secrets a run keeps and which it removes. Pure, so every rule is tested without
// a network: the record says which secret is current and which earlier ones it keeps; display names say which
// secrets this tool made for this record; everything else belongs to someone else and is left alone unless
// the user asked to remove it.
import { RotateError } from '../../errors.js';
import type { CredentialInfo, RotationPlan } from '../../pipeline/target.js';

export interface PasswordCredential {
  keyId: string;
  displayName: string | null;
  hint: string | null;
  startDateTime: string | null;
  endDateTime: string | null;
}

export interface SecretPlanInput {
  recordUid: string;
  secrets: PasswordCredential[];
  /** The record's `client_secret_id`. */
  currentId: string | undefined;
  /** The record's `previous_client_secret_ids`, newest first. */
  previousIds: string[];
  keepPrevious: number;
  removeOthers: boolean;
  /** Most secrets the app may hold (2 for apps open to personal Microsoft accounts), or undefined. */
  limit: number | undefined;
  /** Secrets made by this tool that no record references are orphans once older than this. */
  orphanAfter: Date;
  /** The window of this record's interrupted run (from its journal): its secrets are orphans at any age. */
  interrupted?: { from: Date; to: Date; existing?: string[] | undefined } | undefined;
  /** Hints of secrets that must survive this run (the admin's own secret when an app rotates itself). */
  protectedHints: string[];
}

export interface SecretPlan extends RotationPlan {
  /** The earlier secrets this run keeps, newest first. */
  keptPrevious: string[];
  /**
   * Secrets of the record's chain this run removes after saving. The record lists them after the kept ones:
   * once the record no longer names a secret, nothing tells a later run it was the record's (Keeper's own
   * script named the first one), so a removal that fails would never be retried.
   */
  retiring: string[];
}

const MARKER = 'keeper-rotate';

/** The display name of a secret this tool creates for a record. */
export function secretDisplayName(recordUid: string, at: Date): string {
  return `${MARKER} ${recordUid} ${at.toISOString().slice(0, 19)}Z`;
}

export function isOurs(secret: PasswordCredential, recordUid: string): boolean {
  return (secret.displayName ?? '').startsWith(`${MARKER} ${recordUid} `);
}

const time = (s: PasswordCredential) => Date.parse(s.startDateTime ?? '') || 0;
/** Graph's clock and ours may differ a little; a minute either side still excludes any other run's secret. */
const CLOCK_SKEW_MS = 60_000;
const inWindow = (s: PasswordCredential, w: { from: Date; to: Date; existing?: string[] | undefined } | undefined) =>
  w !== undefined && time(s) >= w.from.getTime() - CLOCK_SKEW_MS && time(s) <= w.to.getTime() + CLOCK_SKEW_MS && !(w.existing ?? []).includes(s.keyId);

export function planSecrets(p: SecretPlanInput): SecretPlan {
  const byId = new Map(p.secrets.map((s) => [s.keyId, s]));
  const current = p.currentId ? byId.get(p.currentId) : undefined;
  const previous = p.previousIds.filter((id) => id !== p.currentId && byId.has(id));
  // After this run the replaced secret is the newest earlier one.
  const chain = [...(current ? [current.keyId] : []), ...previous];
  // A secret the record names but the app's read does not show may be gone, or too new for the read: Graph's
  // reads lag its writes (Microsoft Entra, "designing for eventual consistency"). It stays in the record's list,
  // beyond keep_previous_secrets: dropping it would make it an unreferenced secret of ours, which a later run
  // removes as an orphan while consumers may still use it. The next run drops it if it really is gone.
  const unlisted = p.currentId && !current ? [p.currentId] : [];
  const keptPrevious = [...unlisted, ...chain.slice(0, p.keepPrevious)];
  const isProtected = (s: PasswordCredential) => s.hint !== null && p.protectedHints.includes(s.hint);
  const notes: string[] = [];
  if (p.currentId && !current) notes.push(`the record's client_secret_id ${p.currentId} is not on the app as Graph lists it (gone, or too new for the read); it stays listed in the record until a later read settles it`);

  const removeBefore: CredentialInfo[] = [];
  const removeAfter: CredentialInfo[] = [];
  for (const s of [...p.secrets].sort((a, b) => time(a) - time(b))) {
    if (keptPrevious.includes(s.keyId)) continue;
    if (isProtected(s)) {
      notes.push(`keeping ${s.keyId}: the admin credentials authenticate with it`);
      continue;
    }
    if (chain.includes(s.keyId)) {
      removeAfter.push({ id: s.keyId, reason: `beyond the ${p.keepPrevious} earlier secret(s) kept` });
    } else if (isOurs(s, p.recordUid)) {
      if (inWindow(s, p.interrupted)) removeBefore.push({ id: s.keyId, reason: 'made by an interrupted run and never kept by the record', leftover: true });
      else if (time(s) < p.orphanAfter.getTime()) removeBefore.push({ id: s.keyId, reason: 'made by an interrupted run and never kept by the record' });
      else notes.push(`leaving ${s.keyId} for now: made by keeper-rotate moments ago, possibly by a run still in progress`);
    } else if (p.removeOthers) {
      removeAfter.push({ id: s.keyId, reason: 'not made by keeper-rotate (remove_other_secrets is on)' });
    }
  }

  if (p.limit !== undefined) {
    let count = p.secrets.length - removeBefore.length;
    // Make room with secrets this run removes anyway, oldest first; never with the record's current secret.
    for (const c of [...removeAfter]) {
      if (count + 1 <= p.limit) break;
      if (c.id === current?.keyId) continue;
      removeAfter.splice(removeAfter.indexOf(c), 1);
      removeBefore.push({ ...c, reason: `${c.reason}; removed first to stay within the app's limit of ${p.limit}` });
      count -= 1;
    }
    if (count + 1 > p.limit) {
      throw new RotateError(
        'TARGET_LIMIT_REACHED',
        `the app may hold at most ${p.limit} client secrets and already has ${count} that this run must keep; lower keep_previous_secrets, or remove a secret by hand`,
      );
    }
  }
  const retiring = removeAfter.filter((c) => chain.includes(c.id)).map((c) => c.id);
  return { removeBefore, removeAfter, notes, keptPrevious, retiring, present: p.secrets.map((s) => s.keyId) };
}
