// The per-record lock: one run per record on a gateway, and a dead or overdue owner never blocks the next run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isRotateError } from '../../src/errors.js';
import { lockRecord } from '../../src/state/lock.js';

const dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const UID = 'LockTestRecordUid00001';
const HOUR = 3_600_000;

function deadPid(): number {
  // A child that has exited: its pid is free (reuse within this test is vanishingly unlikely).
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

test('a second lock on the same record is refused while the first is held, and works once released', () => {
  const first = lockRecord(dir, UID, Date.now() + HOUR);
  assert.equal(statSync(join(dir, `${UID}.lock`)).mode & 0o777, 0o600);
  // Same process, but the lock file names another live owner: the parent of this test process.
  writeFileSync(join(dir, `${UID}.lock`), JSON.stringify({ pid: process.ppid, runId: 'other', expiresAt: Date.now() + HOUR }));
  assert.throws(() => lockRecord(dir, UID, Date.now() + HOUR), (err) => isRotateError(err) && err.code === 'ROTATION_IN_PROGRESS');
  // The first holder's release does not free a lock that is no longer its own.
  first.release();
  assert.ok(existsSync(join(dir, `${UID}.lock`)));
  rmSync(join(dir, `${UID}.lock`));
  const again = lockRecord(dir, UID, Date.now() + HOUR);
  again.release();
  assert.equal(existsSync(join(dir, `${UID}.lock`)), false);
});

test('a lock whose process is gone is taken over', () => {
  writeFileSync(join(dir, `${UID}.lock`), JSON.stringify({ pid: deadPid(), runId: 'dead', expiresAt: Date.now() + HOUR }));
  const lock = lockRecord(dir, UID, Date.now() + HOUR);
  assert.equal(JSON.parse(readFileSync(join(dir, `${UID}.lock`), 'utf8')).runId, lock.runId);
  lock.release();
});

test('a lock past its owner\'s hard stop is taken over even if the pid is alive (pid reuse)', () => {
  writeFileSync(join(dir, `${UID}.lock`), JSON.stringify({ pid: process.ppid, runId: 'overdue', expiresAt: Date.now() - 1 }));
  const lock = lockRecord(dir, UID, Date.now() + HOUR);
  assert.equal(JSON.parse(readFileSync(join(dir, `${UID}.lock`), 'utf8')).runId, lock.runId);
  lock.release();
});

test('a half-written lock file counts as stale', () => {
  writeFileSync(join(dir, `${UID}.lock`), '{"pid":');
  const lock = lockRecord(dir, UID, Date.now() + HOUR);
  lock.release();
  assert.equal(existsSync(join(dir, `${UID}.lock`)), false);
});
