// A fleet of 1,000 records: the report reads them all in one Keeper request, and --check asks IAM once per
// record, honouring IAM's throttling, with no write anywhere.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ScriptSandbox, startScriptSandbox } from '../helpers/run-script.js';
import { seedAwsFleet } from './fleet.js';
import { report } from './run-report.js';

const FLEET = 1000;

describe('report on 1,000 records', () => {
  let box: ScriptSandbox;
  before(async () => {
    box = await startScriptSandbox('report');
    seedAwsFleet(box.sandbox, FLEET);
  });
  after(async () => box.close());

  test('one get_secret for every record, and --check lists each user once, writing nothing', async () => {
    const log = box.sandbox.log;
    const r = await report(box.env, ['--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { summary: { records: number } }).summary.records, FLEET + 4);
    assert.equal(log.entries({ service: 'ksm', operation: 'get_secret' }).length, 1);
    const checked = await report(box.env, ['--format', 'csv', '--check', '--concurrency', '16']);
    assert.equal(checked.code, 0, checked.stdout.split('\r\n').filter((l) => !l.includes(',agrees,')).slice(0, 5).join('\n'));
    assert.equal(checked.stdout.split('\r\n').filter((l) => l.includes(',agrees,')).length, FLEET + 4);
    assert.equal(log.entries({ service: 'ksm', operation: 'get_secret' }).length, 2);
    // At least once per AWS record; more where IAM throttled the pace (each throttled request is sent again).
    const listed = log.entries({ service: 'iam', operation: 'ListAccessKeys' }).length;
    assert.ok(listed >= FLEET + 1 && listed < 2 * FLEET, `${listed} ListAccessKeys`);
    assert.deepEqual(log.entries().filter((e) => /^(update_secret|CreateAccessKey|DeleteAccessKey|UpdateAccessKey)$/.test(e.operation)), []);
  });
});
