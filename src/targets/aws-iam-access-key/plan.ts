// Which of an IAM user's access keys a run deletes: the CURRENT/LAST pattern. IAM allows two keys per user.
// CURRENT is the key in the record; LAST is the one it replaced, still valid for jobs that fetched it before
// the last rotation. Before creating, LAST goes (never CURRENT); after the new key is saved and verified,
// CURRENT becomes LAST and stays active unless the user asks to deactivate it. A key the record does not know
// is deleted only when the user opted in, or when the journal shows an interrupted run of ours made it; and even
// when opted in, never while it is young enough to be another run's new key (see `freshSince`).
// Adoption: a record with no CURRENT on the user (fresh from the template, or its key deleted by hand) whose user
// already has one key takes that key as LAST, so the next rotation retires it instead of finding an untracked key
// in the way of IAM's quota. With two such keys the run cannot tell which one consumers use: it refuses.
import { ExitCode, RotateError } from '../../errors.js';
import type { CredentialInfo, RotationPlan } from '../../pipeline/target.js';

export const KEYS_PER_USER = 2;

export interface AccessKeyInfo {
  accessKeyId: string;
  status: 'Active' | 'Inactive' | string;
  createDate: Date | undefined;
}

export interface KeyPlanInput {
  userName: string;
  keys: AccessKeyInfo[];
  /** The record's aws_access_key_id (CURRENT). */
  currentId: string | undefined;
  /** The record's previous key (LAST). */
  lastId: string | undefined;
  /** When IAM made CURRENT, as the record says (its CreateDate field, written by each rotation). */
  currentCreatedAt?: Date | undefined;
  /** Whether STS accepts the record's CURRENT key, asked only when the list does not show a young one. */
  currentSignsIn?: boolean | undefined;
  deleteUnknown: boolean;
  deactivateLast: boolean;
  /** Keys that must survive (the admin's own key, when it belongs to this user). */
  protectedIds: string[];
  /** The window of this record's interrupted run: a key made then that the record does not name is its leftover. */
  interrupted?: { from: Date; to: Date; existing?: string[] | undefined } | undefined;
  /**
   * A key made at or after this moment that the record (as this run read it) does not name may be another run's
   * (another gateway's) new key: saved in the record after this run read it, or about to be. This run's start
   * less the longest a run lasts (deadline and hard-stop grace): a run that saved after this run's read created
   * its key at most that long before it. Such a key is never deleted, whatever delete_all_keys_before_rotating says.
   */
  freshSince?: Date | undefined;
}

export interface KeyPlan extends RotationPlan {
  /**
   * The key that becomes LAST once the new one is saved: the record's CURRENT, or, when the user has no CURRENT,
   * the one key it already has (adopted).
   */
  nextLast: string | undefined;
}

/** IAM's clock and ours may differ a little. */
const SKEW_MS = 60_000;

/**
 * How long a new key may be missing from ListAccessKeys. IAM is eventually consistent ("changes ... might not be
 * immediately visible", IAM troubleshooting, "eventual consistency"); seconds in practice, so ten minutes is
 * generous, and a key the record names that is younger and not listed is taken as not listed yet, not deleted.
 */
export const LIST_LAG_MS = 10 * 60_000;

export function planKeys(p: KeyPlanInput): KeyPlan {
  const notes: string[] = [];
  const removeBefore: CredentialInfo[] = [];
  const removeAfter: CredentialInfo[] = [];
  const current = p.keys.find((k) => k.accessKeyId === p.currentId);
  const age = p.currentCreatedAt ? Date.now() - p.currentCreatedAt.getTime() : undefined;
  if (p.currentId && !current && age !== undefined && age < LIST_LAG_MS) {
    // Planning without it would drop it from CURRENT/LAST: a working key nobody tracks, and a quota that later
    // refuses every rotation.
    // Exit 3 only when the record's key still signs in; otherwise it may be deleted (or still propagating): 5.
    throw new RotateError(
      'TARGET_NOT_FOUND',
      `IAM does not list the record's key ${p.currentId} on user ${p.userName}, which it made ${Math.max(0, Math.round(age / 1000))} s ago: IAM's reads lag its writes, so it may well exist (${p.currentSignsIn ? 'it still signs in' : 'STS does not accept it either: deleted, or still propagating'}); nothing was changed, and the next run looks again (a key still missing ${LIST_LAG_MS / 60_000} min after it was made is taken as deleted)`,
      p.currentSignsIn ? {} : { exitCode: ExitCode.NeedsAttention },
    );
  }
  if (p.currentId && !current) notes.push(`the record's key ${p.currentId} is no longer on user ${p.userName}; the new key replaces it`);
  const others = p.keys.filter((k) => k !== current);
  const unknown: AccessKeyInfo[] = [];
  for (const k of others) {
    const made = k.createDate?.getTime();
    if (p.protectedIds.includes(k.accessKeyId)) {
      notes.push(`keeping ${k.accessKeyId}: the admin credentials sign with it`);
      continue;
    }
    const leftover =
      p.interrupted !== undefined &&
      made !== undefined &&
      made >= p.interrupted.from.getTime() - SKEW_MS &&
      made <= p.interrupted.to.getTime() + SKEW_MS &&
      // Keys carry no name: only a key that was not there when that run created is its leftover.
      !(p.interrupted.existing ?? []).includes(k.accessKeyId);
    if (leftover) {
      removeBefore.push({ id: k.accessKeyId, reason: 'made by an interrupted run and never saved in the record', leftover: true });
    } else if (k.accessKeyId === p.lastId) {
      removeBefore.push({ id: k.accessKeyId, reason: 'LAST key: CURRENT takes its place' });
    } else {
      unknown.push(k);
    }
  }
  let count = p.keys.length - removeBefore.length;
  // Without a creation date a key's age is unknown: as young as can be.
  const isFresh = (k: AccessKeyInfo) => {
    const made = k.createDate?.getTime();
    return p.freshSince !== undefined && (made === undefined || made >= p.freshSince.getTime() - SKEW_MS);
  };
  // What delete_all_keys_before_rotating may delete goes first, so the keys that stay are judged on the room left.
  const staying: AccessKeyInfo[] = [];
  for (const k of unknown) {
    if (p.deleteUnknown && !isFresh(k)) {
      removeBefore.push({ id: k.accessKeyId, reason: 'not in the record (delete_all_keys_before_rotating is on)' });
      count -= 1;
    } else staying.push(k);
  }
  if (!current && !p.deleteUnknown && staying.length >= KEYS_PER_USER) {
    // One young enough to be another run's new key: that run's save decides, and a later run re-reads the record.
    const young = staying.find(isFresh);
    if (young) throw new RotateError('TARGET_LIMIT_REACHED', `user ${p.userName} already has ${KEYS_PER_USER} access keys and ${youngKey(young)}; run again later (the record is re-read)`);
    throw ambiguous(p, staying);
  }
  // The key consumers use now, when the record names none: it becomes LAST, so the next rotation retires it.
  const adopted = !current && staying.length === 1 ? staying[0] : undefined;
  // IAM allows two keys, so a key that stays with room left is the adopted one; any other is in the way.
  for (const k of staying) {
    if (count + 1 <= KEYS_PER_USER) continue;
    if (p.deleteUnknown && isFresh(k)) {
      throw new RotateError(
        'TARGET_LIMIT_REACHED',
        `user ${p.userName} already has ${KEYS_PER_USER} access keys and ${youngKey(k)}, so delete_all_keys_before_rotating does not delete it yet; run again later (the record is re-read), or delete it by hand if it is not the record's`,
      );
    }
    throw new RotateError(
      'TARGET_LIMIT_REACHED',
      `user ${p.userName} already has ${KEYS_PER_USER} access keys and ${k.accessKeyId} is not the record's CURRENT or LAST key; delete it by hand or set delete_all_keys_before_rotating to true`,
    );
  }
  if (adopted) {
    notes.push(
      `adopting ${adopted.accessKeyId} as LAST: the record names no CURRENT key that user ${p.userName} has, so the user's one other key is taken as the one consumers use now; the record names it as LAST, and the next rotation deletes it`,
    );
  }
  const becomesLast = current ?? adopted;
  if (becomesLast && p.deactivateLast) {
    // The admin signs with this key (the PAM configuration's key is the record's CURRENT): deactivating it would
    // lock out every record that configuration rotates.
    if (p.protectedIds.includes(becomesLast.accessKeyId)) notes.push(`not deactivating ${becomesLast.accessKeyId} (it becomes LAST): the admin credentials sign with it`);
    else {
      const reason = current ? 'CURRENT becomes LAST (deactivate_previous_key is on)' : 'adopted as LAST (deactivate_previous_key is on)';
      removeAfter.push({ id: becomesLast.accessKeyId, reason, deactivate: true });
    }
  }
  notes.unshift(`user ${p.userName} has ${p.keys.length} access key(s)${current ? `; CURRENT is ${current.accessKeyId}` : ''}`);
  return { removeBefore, removeAfter, notes, nextLast: becomesLast?.accessKeyId, present: p.keys.map((k) => k.accessKeyId) };
}

/** Why a young key the record does not name is left alone: it may be another run's. */
function youngKey(k: AccessKeyInfo): string {
  const made = k.createDate?.getTime();
  const since = made === undefined ? 'of unknown age' : `made ${Math.max(0, Math.round((Date.now() - made) / 60_000))} min ago`;
  return `${k.accessKeyId} is not in the record as this run read it, but is ${since}: it may be another run's new key, saved in the record since`;
}

/**
 * A record with no CURRENT whose user already has two older keys it does not know: either could be the one
 * consumers use, and IAM allows no third, so the first rotation cannot adopt one. Exit 2, not 3: nothing was
 * changed, the record is what is missing something (which key may go), so running again changes nothing until a
 * person answers; and exit 3 promises that the record's credential still works, which says nothing of a record
 * that holds none.
 */
function ambiguous(p: KeyPlanInput, keys: AccessKeyInfo[]): RotateError {
  const age = (k: AccessKeyInfo) => (k.createDate ? `made ${k.createDate.toISOString().slice(0, 10)}` : 'of unknown age');
  const list = keys.map((k) => `${k.accessKeyId} (${k.status}, ${age(k)})`).join(' and ');
  const gone = p.currentId ? ` (its CURRENT ${p.currentId} is no longer on the user)` : '';
  return new RotateError(
    'ADOPTION_AMBIGUOUS',
    `user ${p.userName} has ${keys.length} access keys the record knows neither as CURRENT nor as LAST, ${list}, and the record names no CURRENT key${gone}: a first rotation adopts the user's one existing key as LAST, but of two it cannot tell which one consumers still use, and IAM allows no third. Nothing was changed. To adopt them, put the ID of the key that may be deleted now in previous_aws_access_key_id (the run deletes it before creating and keeps the other as LAST until the next rotation), or delete one of them in IAM (an Inactive key still counts toward IAM's two), or set delete_all_keys_before_rotating to true to delete both`,
  );
}
