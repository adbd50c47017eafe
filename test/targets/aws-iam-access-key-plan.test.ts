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

  test('a young unknown key is left, with a note, when there is room', () => {
    const plan = planKeys(input([key('AKIAFRESHKEY0000000', 3)], { currentId: undefined }));
    assert.deepEqual(removed(plan), []);
    assert.ok(plan.notes.some((n) => n.includes('leaving AKIAFRESHKEY0000000')));
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
