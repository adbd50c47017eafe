import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deadline } from '../src/deadline.js';

test('a call gets the per-call bound, a shorter bound of its own, or the time left, whichever is least', () => {
  let now = 1_000;
  const deadline = new Deadline(10_000, () => now, 4_000);
  assert.equal(deadline.timeout(), 4_000);
  assert.equal(deadline.timeout(2_500), 2_500);
  assert.equal(deadline.timeout(60_000), 4_000);
  now += 8_000;
  assert.equal(deadline.timeout(), 2_000);
  now += 5_000;
  assert.equal(deadline.timeout(), 1, 'a spent deadline still gives a positive timeout, so the call fails at once');
});
