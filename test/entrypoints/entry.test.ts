// The hard stop's exit code must tell the truth from the journal, whatever step the run was stuck in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hardStopVerdict } from '../../src/entrypoints/entry.js';
import type { JournalEntry, JournalPhase } from '../../src/state/journal.js';

const entry = (phase: JournalPhase, extra: Partial<JournalEntry> = {}): JournalEntry => ({
  version: 2,
  runId: 'r',
  target: 'wiz-service-account',
  recordUid: 'HardStopRecordUid00001',
  phase,
  since: '2026-11-25T00:00:00.000Z',
  at: '2026-11-25T00:00:00.000Z',
  ...extra,
});

test('stuck before anything was made, or holding only the write check: exit 3', () => {
  assert.equal(hardStopVerdict(undefined, 600).exitCode, 3);
  assert.equal(hardStopVerdict(entry('preparing', { txn: 'probe' }), 600).exitCode, 3);
});

test('stuck mid-create, mid-replace, mid-save or with a sealed secret: exit 5, and the line says where', () => {
  for (const phase of ['creating', 'created', 'saving', 'verified', 'unsaved'] as const) {
    const verdict = hardStopVerdict(entry(phase, { credentialId: 'cred-1' }), 600);
    assert.equal(verdict.exitCode, 5, phase);
    assert.match(verdict.line, new RegExp(`^keeper-rotate: DEADLINE_EXCEEDED: .* at "${phase}" with cred-1; the next run settles it`));
  }
});

test('stuck after finalize (retiring or adopting): exit 4, the rotation happened', () => {
  const verdict = hardStopVerdict(undefined, 600, true);
  assert.equal(verdict.exitCode, 4);
  assert.match(verdict.line, /saved, verified and finalized/);
});
