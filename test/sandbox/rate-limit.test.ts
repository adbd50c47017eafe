import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter } from '../../src/sandbox/rate-limit.js';

test('a caller may spend its burst at once, then waits for the refill; callers do not share a bucket', () => {
  let now = 0;
  const limiter = new RateLimiter({ burst: 3, perSecond: 0.5 }, () => now);
  for (let i = 0; i < 3; i++) assert.deepEqual(limiter.take('a'), { ok: true });
  assert.deepEqual(limiter.take('a'), { ok: false, retryAfterSeconds: 2 });
  assert.deepEqual(limiter.take('b'), { ok: true });
  now += 1_000;
  assert.deepEqual(limiter.take('a'), { ok: false, retryAfterSeconds: 1 });
  now += 1_000;
  assert.deepEqual(limiter.take('a'), { ok: true });
  assert.equal(limiter.take('a').ok, false);
});

test('a refused request does not spend the budget, and Retry-After is never shorter than the wait', () => {
  let now = 0;
  const limiter = new RateLimiter({ burst: 1, perSecond: 4 }, () => now);
  assert.equal(limiter.take('a').ok, true);
  for (let i = 0; i < 5; i++) assert.deepEqual(limiter.take('a'), { ok: false, retryAfterSeconds: 1 });
  now += 250;
  assert.equal(limiter.take('a').ok, true);
});

test('a budget must allow at least one request', () => {
  assert.throws(() => new RateLimiter({ burst: 0, perSecond: 1 }), /burst >= 1/);
  assert.throws(() => new RateLimiter({ burst: 1, perSecond: 0 }), /perSecond > 0/);
});
