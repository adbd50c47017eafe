import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import { Logger } from '../src/log.js';
import { Secret, redact } from '../src/secret.js';

describe('Secret', () => {
  test('cannot be printed, serialised or inspected by accident', () => {
    const s = new Secret('Zx9-very-secret-value');
    assert.equal(`${s}`, '[secret]');
    assert.equal(JSON.stringify({ s }), '{"s":"[secret]"}');
    assert.equal(inspect({ s }), '{ s: [secret] }');
    assert.doesNotMatch(inspect(s, { showHidden: true, depth: 5 }), /very-secret/);
    assert.deepEqual(Object.keys(s), []);
    assert.equal(s.reveal(), 'Zx9-very-secret-value');
    assert.ok(s.equals(new Secret('Zx9-very-secret-value')));
    assert.ok(!s.equals(new Secret('another-value')));
  });

  test('redact scrubs registered secrets, also URL- and base64-encoded', () => {
    new Secret('p@ss/word+123');
    const text = `body client_secret=${encodeURIComponent('p@ss/word+123')} raw=p@ss/word+123 b64=${Buffer.from('p@ss/word+123').toString('base64')}`;
    assert.equal(redact(text), 'body client_secret=[secret] raw=[secret] b64=[secret]');
  });

  test('the logger scrubs secrets from every line and keeps one line per step', () => {
    new Secret('leaky-secret-99');
    const out: string[] = [];
    const err: string[] = [];
    const log = new Logger({ script: 't', format: 'text', stdout: { write: (c: string) => out.push(c) }, stderr: { write: (c: string) => err.push(c) } });
    log.error('save', 'server said: leaky-secret-99\nsecond line', { id: 'k1' });
    log.result('failed', 'done');
    // A line break inside a message is shown escaped (src/log.ts escapeControls), so the step stays one line.
    assert.deepEqual(err, ['t: ERROR save: server said: [secret]\\nsecond line (id=k1)\n']);
    assert.deepEqual(out, ['t: failed: done\n']);
    const json: string[] = [];
    const jlog = new Logger({ script: 't', format: 'json', stdout: { write: () => 0 }, stderr: { write: (c: string) => json.push(c) }, now: () => new Date(0) });
    jlog.info('verify', 'ok leaky-secret-99', { attempts: 2 });
    assert.deepEqual(JSON.parse(json[0]!), { time: '1970-01-01T00:00:00.000Z', level: 'info', script: 't', step: 'verify', message: 'ok [secret]', attempts: 2 });
  });
});
