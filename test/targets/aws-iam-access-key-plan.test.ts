// planKeys, the AWS target's pure plan: which keys a run deletes before creating, and which it must leave.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isRotateError } from '../../src/errors.js';
import { type AccessKeyInfo, type KeyPlanInput, planKeys } from '../../src/targets/aws-iam-access-key/plan.js';

const NOW = Date.now();
const key = (id: string, minutesAgo: number | undefined): AccessKeyInfo => ({
  accessKeyId: id,
  status: 'Active',
  createDate: minutesAgo === undefined ? undefined : new Date(NOW - minutesAgo * 60_000),
});
const input = (keys: AccessKeyInfo[], extra: Partial<KeyPlanInput> = {}): KeyPlanInput => ({
  userName: 'svc',
  keys,
  currentId: 'AKIACURRENT00000000',
  lastId: undefined,
  deleteUnknown: true,
  deactivateLast: false,
  protectedIds: [],
  // This run started 615 s ago and a run lasts at most 615 s: a key made since then may be another run's.
  freshSince: new Date(NOW - 2 * 615_000),
  ...extra,
});
const removed = (p: ReturnType<typeof planKeys>) => p.removeBefore.map((c) => c.id);

describe('planKeys with delete_all_keys_before_rotating', () => {
  test('an unknown key older than the longest run is deleted', () => {
    const plan = planKeys(input([key('AKIACURRENT00000000', 600), key('AKIAOLDSTRANGER0000', 120)]));
    assert.deepEqual(removed(plan), ['AKIAOLDSTRANGER0000']);
  });

  test('a young unknown key is never deleted: refused when it is in the way, with the reason', () => {
    assert.throws(
      () => planKeys(input([key('AKIACURRENT00000000', 600), key('AKIAFRESHKEY0000000', 3)])),
      (err: unknown) => isRotateError(err) && err.code === 'TARGET_LIMIT_REACHED' && /AKIAFRESHKEY0000000 is not in the record as this run read it/.test(err.message),
    );
  });

  test('a young unknown key with room is not deleted: a record with no CURRENT adopts it as LAST', () => {
    const plan = planKeys(input([key('AKIAFRESHKEY0000000', 3)], { currentId: undefined }));
    assert.deepEqual(removed(plan), []);
    assert.equal(plan.nextLast, 'AKIAFRESHKEY0000000');
    assert.ok(plan.notes.some((n) => n.startsWith('adopting AKIAFRESHKEY0000000 as LAST')));
  });

  test('a key without a creation date counts as young', () => {
    assert.throws(() => planKeys(input([key('AKIACURRENT00000000', 600), key('AKIANODATE000000000', undefined)])), /unknown age/);
  });

  test("LAST and an interrupted run's key are deleted however young", () => {
    const plan = planKeys(
      input([key('AKIACURRENT00000000', 600), key('AKIALAST00000000000', 1)], { lastId: 'AKIALAST00000000000' }),
    );
    assert.deepEqual(removed(plan), ['AKIALAST00000000000']);
    const interrupted = planKeys(
      input([key('AKIACURRENT00000000', 600), key('AKIAORPHAN000000000', 2)], { interrupted: { from: new Date(NOW - 3 * 60_000), to: new Date(NOW + 60_000) } }),
    );
    assert.deepEqual(removed(interrupted), ['AKIAORPHAN000000000']);
  });
});

describe('planKeys adopts the key a record with no CURRENT finds on its user', () => {
  const fresh = (keys: AccessKeyInfo[], extra: Partial<KeyPlanInput> = {}) => input(keys, { currentId: undefined, deleteUnknown: false, ...extra });
  const refusal = (code: string, exitCode: number, message: RegExp) => (err: unknown) =>
    isRotateError(err) && err.code === code && err.exitCode === exitCode && message.test(err.message);

  test("the user's one key becomes LAST: nothing removed before, and the record will name it", () => {
    const plan = planKeys(fresh([key('AKIAINUSE0000000000', 600)]));
    assert.deepEqual(removed(plan), []);
    assert.deepEqual(plan.removeAfter, []);
    assert.equal(plan.nextLast, 'AKIAINUSE0000000000');
    assert.ok(plan.notes.some((n) => n.startsWith('adopting AKIAINUSE0000000000 as LAST')), plan.notes.join('\n'));
  });

  test('deactivate_previous_key deactivates the adopted key once the new one is verified, as any LAST', () => {
    const plan = planKeys(fresh([key('AKIAINUSE0000000000', 600)], { deactivateLast: true }));
    assert.deepEqual(plan.removeAfter, [{ id: 'AKIAINUSE0000000000', reason: 'adopted as LAST (deactivate_previous_key is on)', deactivate: true }]);
  });

  test("a CURRENT that is gone from the user (past IAM's list lag) counts as none", () => {
    const plan = planKeys(fresh([key('AKIAINUSE0000000000', 600)], { currentId: 'AKIAGONE00000000000', currentCreatedAt: new Date(NOW - 3600_000) }));
    assert.equal(plan.nextLast, 'AKIAINUSE0000000000');
  });

  test('two keys the record does not know: ADOPTION_AMBIGUOUS, exit 2, naming both and how to adopt them', () => {
    assert.throws(
      () => planKeys(fresh([key('AKIAFIRST0000000000', 900), key('AKIASECOND000000000', 600)])),
      refusal('ADOPTION_AMBIGUOUS', 2, /AKIAFIRST0000000000 \(Active, made \d{4}-\d\d-\d\d\) and AKIASECOND000000000 .*put the ID of the key that may be deleted now in previous_aws_access_key_id/),
    );
  });

  test('the record names one of the two as LAST: it goes before creating, and the other is adopted', () => {
    const plan = planKeys(fresh([key('AKIAFIRST0000000000', 900), key('AKIASECOND000000000', 600)], { lastId: 'AKIAFIRST0000000000' }));
    assert.deepEqual(removed(plan), ['AKIAFIRST0000000000']);
    assert.equal(plan.nextLast, 'AKIASECOND000000000');
  });

  test("of two, one young enough to be another run's new key: TARGET_LIMIT_REACHED (exit 3, run again), not ambiguous", () => {
    assert.throws(
      () => planKeys(fresh([key('AKIAFIRST0000000000', 900), key('AKIAYOUNG0000000000', 2)])),
      refusal('TARGET_LIMIT_REACHED', 3, /AKIAYOUNG0000000000 is not in the record as this run read it, but is made 2 min ago.*run again later/),
    );
  });

  test('with CURRENT on the user nothing is adopted: CURRENT becomes LAST, and an unknown key in the way is refused as before', () => {
    assert.equal(planKeys(fresh([key('AKIACURRENT00000000', 600)], { currentId: 'AKIACURRENT00000000' })).nextLast, 'AKIACURRENT00000000');
    assert.throws(
      () => planKeys(fresh([key('AKIACURRENT00000000', 600), key('AKIASTRANGER0000000', 900)], { currentId: 'AKIACURRENT00000000' })),
      refusal('TARGET_LIMIT_REACHED', 3, /AKIASTRANGER0000000 is not the record's CURRENT or LAST key/),
    );
  });

  test("the admin's own key is never adopted", () => {
    const plan = planKeys(fresh([key('AKIAADMIN0000000000', 600)], { protectedIds: ['AKIAADMIN0000000000'] }));
    assert.equal(plan.nextLast, undefined);
  });

  test('delete_all_keys_before_rotating deletes an old key first, whatever the order, and adopts the young one that stays', () => {
    const plan = planKeys(fresh([key('AKIAYOUNG0000000000', 2), key('AKIAOLD000000000000', 900)], { deleteUnknown: true }));
    assert.deepEqual(removed(plan), ['AKIAOLD000000000000']);
    assert.equal(plan.nextLast, 'AKIAYOUNG0000000000');
  });
});
