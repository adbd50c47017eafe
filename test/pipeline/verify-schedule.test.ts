import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VERIFY_POLICY, verifyTimes, verifyWindowMs } from '../../src/pipeline/verify-schedule.js';

const deadline = (totalMs: number, remainingMs: number, requestTimeoutMs = 30_000) => ({ totalMs, requestTimeoutMs, remaining: () => remainingMs });

describe('verify schedule', () => {
  test('the longest timeout a record may ask for (3600 s) ends before the try cap, at the shortest jittered gaps', () => {
    const times = verifyTimes(3_600_000, () => 0);
    assert.ok(times.length < VERIFY_POLICY.maxAttempts, `${times.length} tries`);
    assert.ok(times.at(-1)! > 3_600_000 - VERIFY_POLICY.maxGapMs, 'the schedule reaches the timeout');
  });

  test('a 120 s propagation costs at most 20 tries (the one that succeeds included), whatever the jitter', () => {
    for (const r of [0, 0.25, 0.5, 0.75, 1]) {
      const tries = verifyTimes(200_000, () => r).filter((t) => t < 120_000).length + 1;
      assert.ok(tries <= 20, `jitter ${r}: ${tries} tries`);
    }
  });

  test('the window keeps two request timeouts back from the deadline for undoing', () => {
    assert.equal(verifyWindowMs(300_000, deadline(600_000, 600_000)), 300_000);
    assert.equal(verifyWindowMs(3_600_000, deadline(600_000, 500_000)), 440_000);
  });

  test('the reserve is at most a quarter of the run, and the window never negative', () => {
    assert.equal(verifyWindowMs(300_000, deadline(12_000, 12_000)), 9_000);
    assert.equal(verifyWindowMs(300_000, deadline(12_000, 2_000)), 0);
  });
});
