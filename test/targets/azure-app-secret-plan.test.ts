// planSecrets: which of an app's client secrets a run keeps, removes before creating, and removes after the
// new one is saved. Pure, so every rule is checked here without a network.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RotateError } from '../../src/errors.js';
import { type PasswordCredential, type SecretPlanInput, isOurs, planSecrets, secretDisplayName } from '../../src/targets/azure-app-secret/plan.js';

const RECORD = 'RecordUidForPlanTest01';
const OTHER_RECORD = 'SomeOtherRecordUid0001';
const NOW = Date.parse('2025-06-01T12:00:00Z');
const ORPHAN_AFTER = new Date(NOW - 10 * 60_000);
const HOUR = 3_600_000;

let seq = 0;
function secret(options: { name?: string | null; ageHours?: number; hint?: string | null; keyId?: string } = {}): PasswordCredential {
  seq += 1;
  const start = NOW - (options.ageHours ?? 24) * HOUR;
  return {
    keyId: options.keyId ?? `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    displayName: options.name === undefined ? 'someone else' : options.name,
    hint: options.hint === undefined ? `h${String(seq).padStart(2, '0')}` : options.hint,
    startDateTime: new Date(start).toISOString(),
    endDateTime: new Date(start + 365 * 24 * HOUR).toISOString(),
  };
}

/** A secret this tool made for RECORD, `ageHours` ago. */
const ours = (ageHours = 24, recordUid = RECORD) => secret({ name: secretDisplayName(recordUid, new Date(NOW - ageHours * HOUR)), ageHours });

function plan(p: Partial<SecretPlanInput> & { secrets: PasswordCredential[] }) {
  return planSecrets({
    recordUid: RECORD,
    currentId: undefined,
    previousIds: [],
    keepPrevious: 1,
    removeOthers: false,
    limit: undefined,
    orphanAfter: ORPHAN_AFTER,
    protectedHints: [],
    ...p,
  });
}

const ids = (list: Array<{ id: string }>) => list.map((c) => c.id);

describe('planSecrets: display names', () => {
  test('a secret is ours only when its name carries the marker and this record UID', () => {
    const at = new Date('2025-01-02T03:04:05.678Z');
    const name = secretDisplayName(RECORD, at);
    assert.equal(name, `keeper-rotate ${RECORD} 2025-01-02T03:04:05Z`);
    assert.equal(isOurs(secret({ name }), RECORD), true);
    assert.equal(isOurs(secret({ name }), OTHER_RECORD), false);
    assert.equal(isOurs(secret({ name: `keeper-rotate ${RECORD}x 2025` }), RECORD), false);
    assert.equal(isOurs(secret({ name: null }), RECORD), false);
    assert.equal(isOurs(secret({ name: 'Client Secret Rotated by Keeper' }), RECORD), false);
  });
});

describe('planSecrets: retention', () => {
  test('keeps the replaced secret (default 1) and retires older ones in the record chain after saving', () => {
    const older = ours(72);
    const prev = ours(48);
    const cur = ours(24);
    const p = plan({ secrets: [cur, prev, older], currentId: cur.keyId, previousIds: [prev.keyId, older.keyId] });
    assert.deepEqual(p.keptPrevious, [cur.keyId]);
    assert.deepEqual(ids(p.removeBefore), []);
    // Oldest first.
    assert.deepEqual(ids(p.removeAfter), [older.keyId, prev.keyId]);
    assert.match(p.removeAfter[0]!.reason, /beyond the 1 earlier/);
    assert.deepEqual(p.retiring, [older.keyId, prev.keyId]);
  });

  test('keep_previous_secrets = 0 retires the current secret too, but only after the new one is saved', () => {
    const prev = ours(48);
    const cur = ours(24);
    const p = plan({ secrets: [cur, prev], currentId: cur.keyId, previousIds: [prev.keyId], keepPrevious: 0 });
    assert.deepEqual(p.keptPrevious, []);
    assert.deepEqual(ids(p.removeBefore), []);
    assert.deepEqual(ids(p.removeAfter), [prev.keyId, cur.keyId]);
    assert.deepEqual(p.retiring, [prev.keyId, cur.keyId]);
  });

  test('keep_previous_secrets = 2 keeps the current and the newest previous one', () => {
    const p3 = ours(96);
    const p2 = ours(72);
    const p1 = ours(48);
    const cur = ours(24);
    const p = plan({ secrets: [p3, cur, p1, p2], currentId: cur.keyId, previousIds: [p1.keyId, p2.keyId, p3.keyId], keepPrevious: 2 });
    assert.deepEqual(p.keptPrevious, [cur.keyId, p1.keyId]);
    assert.deepEqual(ids(p.removeAfter), [p3.keyId, p2.keyId]);
  });

  test('ignores previous IDs no longer on the app, and the current ID repeated among them', () => {
    const cur = ours(24);
    const prev = ours(48);
    const gone = '11111111-2222-4333-8444-555555555555';
    const p = plan({ secrets: [cur, prev], currentId: cur.keyId, previousIds: [cur.keyId, gone, prev.keyId], keepPrevious: 2 });
    assert.deepEqual(p.keptPrevious, [cur.keyId, prev.keyId]);
    assert.deepEqual(ids(p.removeAfter), []);
  });

  test('a record whose current secret the app read does not show says so and keeps its ID listed (the read may lag), beyond keep_previous_secrets', () => {
    const stray = secret();
    const prev = ours(48);
    const p = plan({ secrets: [stray, prev], currentId: '99999999-9999-4999-8999-999999999999', previousIds: [prev.keyId], keepPrevious: 1 });
    assert.deepEqual(p.keptPrevious, ['99999999-9999-4999-8999-999999999999', prev.keyId]);
    assert.ok(p.notes.some((n) => n.includes('99999999-9999-4999-8999-999999999999') && /not on the app as Graph lists it/.test(n)), p.notes.join('\n'));
    assert.deepEqual(ids(p.removeAfter), [], 'a secret the record never referenced is not retired');
  });

  test("the record's chain is retired whoever named its secrets (Keeper's own script made the first one)", () => {
    const keeperMade = secret({ name: 'Client Secret Rotated by Keeper', ageHours: 500 });
    const cur = ours(24);
    const p = plan({ secrets: [keeperMade, cur], currentId: cur.keyId, previousIds: [keeperMade.keyId], keepPrevious: 0 });
    assert.deepEqual(ids(p.removeAfter), [keeperMade.keyId, cur.keyId]);
  });

  test('a secret whose removal failed stays in the chain, so the next run retries it whoever named it', () => {
    const keeperMade = secret({ name: 'Client Secret Rotated by Keeper', ageHours: 500 });
    const prev = ours(0.01);
    const cur = ours(0.005);
    const first = plan({ secrets: [keeperMade, prev, cur], currentId: prev.keyId, previousIds: [keeperMade.keyId] });
    assert.deepEqual(first.keptPrevious, [prev.keyId]);
    assert.deepEqual(first.retiring, [keeperMade.keyId]);
    // The record was saved with the new secret `cur` and [...keptPrevious, ...retiring]; removing keeperMade failed.
    const next = plan({ secrets: [keeperMade, prev, cur], currentId: cur.keyId, previousIds: [...first.keptPrevious, ...first.retiring] });
    assert.deepEqual(next.keptPrevious, [cur.keyId]);
    assert.deepEqual(ids(next.removeAfter), [keeperMade.keyId, prev.keyId]);
    // Once removed, a listed ID is simply gone from the app and drops out of the chain.
    const after = plan({ secrets: [cur], currentId: cur.keyId, previousIds: [keeperMade.keyId] });
    assert.deepEqual(after.keptPrevious, [cur.keyId]);
    assert.deepEqual(ids(after.removeAfter), []);
    assert.deepEqual(after.retiring, []);
  });
});

describe('planSecrets: secrets the record does not reference', () => {
  test('foreign secrets are left alone unless remove_other_secrets is on', () => {
    const foreign = secret({ name: 'ci pipeline' });
    const unnamed = secret({ name: null });
    const otherRecords = ours(500, OTHER_RECORD);
    const cur = ours(24);
    const kept = plan({ secrets: [foreign, unnamed, otherRecords, cur], currentId: cur.keyId });
    assert.deepEqual(ids(kept.removeBefore), []);
    assert.deepEqual(ids(kept.removeAfter), []);
    const removed = plan({ secrets: [foreign, unnamed, otherRecords, cur], currentId: cur.keyId, removeOthers: true });
    assert.deepEqual(ids(removed.removeBefore), []);
    assert.deepEqual(new Set(ids(removed.removeAfter)), new Set([foreign.keyId, unnamed.keyId, otherRecords.keyId]));
    assert.ok(removed.removeAfter.every((c) => /remove_other_secrets/.test(c.reason)));
    assert.deepEqual(removed.keptPrevious, [cur.keyId], 'the replaced secret stays even with remove_other_secrets');
    assert.deepEqual(removed.retiring, [], 'secrets the record never named are not written into it');
  });

  test('an old unreferenced secret of ours is an orphan removed before creating; a fresh one is left for now', () => {
    const orphan = ours(2);
    const fresh = ours(0);
    const cur = ours(24);
    const p = plan({ secrets: [cur, orphan, fresh], currentId: cur.keyId });
    assert.deepEqual(ids(p.removeBefore), [orphan.keyId]);
    assert.match(p.removeBefore[0]!.reason, /interrupted run/);
    assert.deepEqual(ids(p.removeAfter), []);
    assert.ok(p.notes.some((n) => n.includes(fresh.keyId)), p.notes.join('\n'));
  });

  test("the admin's own secret survives even when retention or remove_other_secrets would take it", () => {
    const adminSecret = secret({ name: 'admin', hint: 'adm' });
    const prev = secret({ name: 'Client Secret Rotated by Keeper', hint: 'prv', ageHours: 48 });
    const cur = ours(24);
    const p = plan({ secrets: [adminSecret, prev, cur], currentId: cur.keyId, previousIds: [prev.keyId], keepPrevious: 0, removeOthers: true, protectedHints: ['adm', 'prv'] });
    assert.deepEqual(ids(p.removeAfter), [cur.keyId]);
    assert.ok(p.notes.some((n) => n.includes(adminSecret.keyId)));
    assert.ok(p.notes.some((n) => n.includes(prev.keyId)));
  });
});

describe('planSecrets: the two-secret limit of personal-account apps', () => {
  test('makes room by removing first, oldest first, a secret retention drops anyway', () => {
    const prev = ours(48);
    const cur = ours(24);
    const p = plan({ secrets: [cur, prev], currentId: cur.keyId, previousIds: [prev.keyId], limit: 2 });
    assert.deepEqual(ids(p.removeBefore), [prev.keyId]);
    assert.match(p.removeBefore[0]!.reason, /limit of 2/);
    assert.deepEqual(ids(p.removeAfter), []);
    assert.deepEqual(p.keptPrevious, [cur.keyId]);
    assert.deepEqual(p.retiring, [], 'removed before creating: a failure stops the run before the record is written');
  });

  test('counts orphans removed first as room', () => {
    const orphan = ours(2);
    const cur = ours(24);
    const p = plan({ secrets: [cur, orphan], currentId: cur.keyId, limit: 2 });
    assert.deepEqual(ids(p.removeBefore), [orphan.keyId]);
    assert.deepEqual(ids(p.removeAfter), []);
  });

  test('moves only as many as it needs', () => {
    const foreign = secret({ name: 'ci', ageHours: 48 });
    const cur = ours(24);
    const p = plan({ secrets: [foreign, cur], currentId: cur.keyId, removeOthers: true, keepPrevious: 0, limit: 2 });
    // Two removals are planned after; one moved first is enough, and never the current secret.
    assert.deepEqual(ids(p.removeBefore), [foreign.keyId]);
    assert.deepEqual(ids(p.removeAfter), [cur.keyId]);
  });

  test('never removes the current secret before the new one is saved: refuses instead', () => {
    const foreign = secret({ name: 'ci' });
    const cur = ours(24);
    assert.throws(
      () => plan({ secrets: [foreign, cur], currentId: cur.keyId, keepPrevious: 0, limit: 2 }),
      (err: unknown) => err instanceof RotateError && err.code === 'TARGET_LIMIT_REACHED' && /at most 2/.test(err.message),
    );
  });

  test('refuses when two secrets it must keep fill the app', () => {
    const a = secret({ name: 'Client Secret Rotated by Keeper' });
    const b = secret({ name: 'someone else' });
    assert.throws(
      () => plan({ secrets: [a, b], currentId: a.keyId, limit: 2 }),
      (err: unknown) => err instanceof RotateError && err.code === 'TARGET_LIMIT_REACHED' && err.exitCode === 3,
    );
    // The same app without the limit rotates normally.
    assert.doesNotThrow(() => plan({ secrets: [a, b], currentId: a.keyId }));
  });
});
