// The report's model and its pure parts: which fields it reads (never a secret), the statuses and exit bits, the
// command line, the bound on concurrency, and the escaping each format applies.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RecordData } from '../../src/keeper/record-data.js';
import type { VaultRecord } from '../../src/keeper/vault.js';
import { mapBounded } from '../../src/report/bounded.js';
import { csvCell } from '../../src/report/format/csv.js';
import { escapeHtml } from '../../src/report/format/html.js';
import { buildRow } from '../../src/report/model.js';
import { parseReportArgs } from '../../src/report/options.js';
import { readPlain } from '../../src/report/plain-fields.js';
import { summarise } from '../../src/report/verdict.js';
import { secret, text } from './fleet.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const OPTIONS = { now: NOW, warnDays: 30, failDays: 0, maxKeyAgeDays: undefined };
const record = (custom: RecordData['custom'], type = 'pamUser', login = 'someone'): VaultRecord => ({
  uid: 'AAAAAAAAAAAAAAAAAAAAAA',
  revision: 1,
  title: 't',
  type,
  data: { title: 't', type, fields: [{ type: 'login', value: [login] }], custom },
});

describe('readPlain', () => {
  test('never reads a field of a secret type, whatever its label', () => {
    const data: RecordData = { title: 't', type: 'pamUser', fields: [{ type: 'password', label: 'expires', value: ['hunter2-password'] }], custom: [secret('client_secret_id', 'a-hidden-value'), { type: 'text', label: 'x', value: ['plain'] }] };
    assert.equal(readPlain(data, 'client_secret_id'), undefined);
    assert.equal(readPlain(data, 'expires'), undefined);
    assert.equal(readPlain(data, 'password'), undefined);
    assert.equal(readPlain(data, 'x'), 'plain');
  });

  test('cuts a long value', () => {
    const v = readPlain({ title: '', type: 'pamUser', fields: [], custom: [text('x', 'y'.repeat(5000))] }, 'x')!;
    assert.equal(v.length, 301);
  });
});

describe('buildRow', () => {
  test('records of none of our targets, and records not of type pamUser, have no row', () => {
    assert.equal(buildRow(record([text('something', 'x')]), OPTIONS), undefined);
    assert.equal(buildRow(record([text('application_object_id', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d')], 'login'), OPTIONS), undefined);
  });

  test('a record mixing two targets is unreadable', () => {
    const row = buildRow(record([text('application_object_id', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d'), text('aws_access_key_id', 'AKIAAAAAAAAAAAAAAAAA')]), OPTIONS)!;
    assert.equal(row.target, undefined);
    assert.equal(row.status, 'unreadable');
  });

  test('expired, expiring, failing and unreadable fields, and the placeholder of a template', () => {
    const azure = (expires: string, extra: RecordData['custom'] = []) => buildRow(record([text('application_object_id', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d'), text('client_secret_id', 'set-by-rotation'), text('expires', expires), ...extra!]), OPTIONS)!;
    const expired = azure('2026-05-31T00:00:00Z');
    assert.deepEqual([expired.status, expired.daysToExpiry, expired.credentialId], ['expired', -1, undefined]);
    assert.equal(azure('2026-06-20T00:00:00Z').status, 'expiring');
    assert.equal(azure('2026-09-20T00:00:00Z').status, 'ok');
    assert.equal(azure('soon').status, 'unreadable');
    const failing = azure('2026-09-20T00:00:00Z', [text('last_rotation_exit', '4'), text('last_rotation_error', 'DELIVERY_INCOMPLETE')]);
    assert.deepEqual([failing.status, failing.lastRotation?.exit, failing.lastRotation?.error], ['failing', 4, 'DELIVERY_INCOMPLETE']);
    assert.equal(azure('2026-09-20T00:00:00Z', [text('last_rotation_exit', '0')]).status, 'ok');
    assert.equal(azure('2026-09-20T00:00:00Z', [text('last_rotation_exit', 'zero')]).status, 'unreadable');
  });

  test('AWS: age from CreateDate; an expiry only with --max-key-age-days', () => {
    const aws = (maxKeyAgeDays: number | undefined) => buildRow(record([text('aws_access_key_id', 'AKIAAAAAAAAAAAAAAAAA'), text('CreateDate', '2026-03-03T00:00:00Z')], 'pamUser', 'bot'), { ...OPTIONS, maxKeyAgeDays })!;
    assert.deepEqual([aws(undefined).ageDays, aws(undefined).expires, aws(undefined).status], [90, undefined, 'ok']);
    assert.deepEqual([aws(90).expires, aws(90).status], ['2026-06-01T00:00:00.000Z', 'expired']);
    assert.deepEqual([aws(100).status, aws(100).daysToExpiry], ['expiring', 10]);
  });
});

describe('summarise', () => {
  test('8 plus a bit for each kind of finding, whichever row holds it', () => {
    const row = (custom: RecordData['custom']) => buildRow(record([text('application_object_id', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d'), ...custom!]), OPTIONS)!;
    const ok = row([text('expires', '2026-12-01T00:00:00Z')]);
    const expiredAndFailing = row([text('expires', '2026-01-01T00:00:00Z'), text('last_rotation_exit', '3')]);
    const unreadable = row([text('expires', 'never')]);
    assert.equal(summarise([ok], false).exitCode, 0);
    assert.equal(summarise([ok, expiredAndFailing], false).exitCode, 8 | 1 | 2);
    assert.equal(summarise([ok, unreadable], false).exitCode, 8 | 4);
  });
});

describe('parseReportArgs', () => {
  test('formats, numbers and repeatable --config; anything else is USAGE, quoting at most 20 characters', () => {
    const o = parseReportArgs(['--format=csv', '--check', '--concurrency', '4', '--config', 'DemoPamConfiguration01', '--config=DemoAwsPamConfigurat01', '--warn-days', '7']);
    assert.deepEqual([o.format, o.check, o.concurrency, o.configs, o.warnDays], ['csv', true, 4, ['DemoPamConfiguration01', 'DemoAwsPamConfigurat01'], 7]);
    for (const bad of [['--format', 'xml'], ['--concurrency', '0'], ['--concurrency', '33'], ['--warn-days', '-1'], ['--config', 'nope', '--check'], ['--config', 'DemoPamConfiguration01'], ['--secret=' + 'x'.repeat(40)]]) {
      assert.throws(() => parseReportArgs(bad), (err: Error & { code?: string }) => err.code === 'USAGE' && !err.message.includes('x'.repeat(21)), bad.join(' '));
    }
  });
});

describe('mapBounded', () => {
  test('never more than the limit in flight, and every result in order', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapBounded(
      Array.from({ length: 50 }, (_, i) => i),
      4,
      async (i) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight -= 1;
        return i * 2;
      },
    );
    assert.equal(most, 4);
    assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => i * 2));
  });
});

describe('escaping', () => {
  test('CSV: a formula is inert, quotes are doubled, control characters are escapes, numbers stay numbers', () => {
    assert.equal(csvCell('=1+1'), "'=1+1");
    assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvCell('-2+3'), "'-2+3");
    assert.equal(csvCell(-3), '-3');
    assert.equal(csvCell('a "b", c'), '"a ""b"", c"');
    assert.equal(csvCell('x\ny\u202e'), 'x\\ny\\u202e');
  });

  test('HTML: markup characters are entities, control and bidi characters visible escapes', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>\u202e\u001b`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\\u202e\\u001b');
  });
});
