// The gate that pauses every Keeper request a process sends side by side: a throttle during a pause extends it
// (each throttled reply restarts Keeper's quiet period) without counting a second pause.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ThrottleGate } from '../../src/keeper/throttle-gate.js';

test('a throttle holds everything for the wait; one during the pause extends it and is the same pause', async () => {
  let now = 1_000;
  const gate = new ThrottleGate(() => now);
  const pauses: number[] = [];
  gate.onPause = (ms) => pauses.push(ms);
  assert.equal(gate.remaining(), 0);
  gate.hold(11_000);
  now += 2_000;
  gate.hold(11_000);
  assert.equal(gate.remaining(), 11_000);
  gate.hold(5_000);
  assert.equal(gate.remaining(), 11_000, 'a shorter wait never shortens a pause');
  assert.equal(gate.pauses, 1);
  assert.deepEqual(pauses, [11_000]);
  now += 11_000;
  assert.equal(gate.remaining(), 0);
  await gate.open();
  gate.hold(22_000);
  assert.equal(gate.pauses, 2);
  assert.deepEqual(pauses, [11_000, 22_000]);
});

test('open() waits until the pause is over', async () => {
  const gate = new ThrottleGate();
  gate.hold(30);
  let opened = false;
  const waiting = gate.open().then(() => (opened = true));
  assert.equal(opened, false);
  await waiting;
  assert.equal(gate.remaining(), 0);
});
