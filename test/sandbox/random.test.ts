import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SEED, SeededRandom, checkSpread } from '../../src/sandbox/random.js';

test('a draw is a function of the seed and the label alone', () => {
  const a = new SeededRandom(42);
  const b = new SeededRandom(42);
  const labels = Array.from({ length: 50 }, (_, i) => `x/${i}`);
  const first = labels.map((l) => a.uniform(l));
  // Drawn in another order, and after unrelated draws: the same values.
  b.uniform('unrelated');
  assert.deepEqual([...labels].reverse().map((l) => b.uniform(l)).reverse(), first);
  assert.notDeepEqual(labels.map((l) => new SeededRandom(43).uniform(l)), first);
  assert.notEqual(a.uniform('x/1'), a.uniform('x/2'));
  for (const u of first) assert.ok(u > 0 && u < 1, String(u));
  assert.equal(new SeededRandom().seed, DEFAULT_SEED);
});

test('reseeding changes the draws that follow', () => {
  const r = new SeededRandom(1);
  const before = r.uniform('k');
  r.seed = 2;
  assert.equal(r.seed, 2);
  assert.notEqual(r.uniform('k'), before);
  assert.equal(r.uniform('k'), new SeededRandom(2).uniform('k'));
});

test('uniform draws are spread evenly; normal draws centre on 0 with unit spread', () => {
  const r = new SeededRandom(7);
  const n = 4000;
  const u = Array.from({ length: n }, (_, i) => r.uniform(`u/${i}`));
  const deciles = Array.from({ length: 10 }, (_, d) => u.filter((x) => x >= d / 10 && x < (d + 1) / 10).length);
  for (const c of deciles) assert.ok(c > n / 10 - 80 && c < n / 10 + 80, `decile counts ${deciles.join(',')}`);
  const z = Array.from({ length: n }, (_, i) => r.normal(`z/${i}`));
  const mean = z.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  assert.ok(Math.abs(mean) < 0.06, `mean ${mean}`);
  assert.ok(Math.abs(sd - 1) < 0.05, `sd ${sd}`);
});

test('spread: a log-normal factor with median 1, clamped to two sigmas; sigma 0 is exactly 1', () => {
  const r = new SeededRandom(3);
  const f = Array.from({ length: 2000 }, (_, i) => r.spread(`f/${i}`, 0.5)).sort((a, b) => a - b);
  const median = (f[999]! + f[1000]!) / 2;
  assert.ok(median > 0.93 && median < 1.07, `median ${median}`);
  assert.ok(f[0]! >= Math.exp(-1) - 1e-12 && f.at(-1)! <= Math.exp(1) + 1e-12);
  // The clamp is reached (about 2.3% of draws on each side), so the bounds are real, not theoretical.
  assert.ok(f.filter((x) => x === Math.exp(-1)).length > 10 && f.filter((x) => x === Math.exp(1)).length > 10);
  assert.equal(r.spread('anything', 0), 1);
});

test('seeds are integers and spreads are 0 to 3', () => {
  assert.throws(() => new SeededRandom(1.5), /integer/);
  assert.throws(() => new SeededRandom(Number.NaN), /integer/);
  assert.throws(() => checkSpread(-0.1), /0 to 3/);
  assert.throws(() => checkSpread(3.5), /0 to 3/);
  assert.equal(checkSpread(0.5), 0.5);
});
