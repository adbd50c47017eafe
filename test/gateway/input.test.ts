import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { RotateError } from '../../src/errors.js';
import { MAX_INPUT_BYTES, encodeGatewayInput, gatewayInputFromFlags, parseGatewayInput, readAll } from '../../src/gateway/input.js';

const USER = 'AAAAAAAAAAAAAAAAAAAAAA';
const CONFIG = 'BBBBBBBBBBBBBBBBBBBBBB';
const ADMIN = 'CCCCCCCCCCCCCCCCCCCCC_';

function rejects(raw: string | Buffer, code: string, mentions?: RegExp): RotateError {
  try {
    parseGatewayInput(raw);
  } catch (err) {
    assert.ok(err instanceof RotateError, `expected a RotateError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.exitCode, 2);
    if (mentions) assert.match(err.message, mentions);
    return err;
  }
  assert.fail(`expected ${code}`);
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64');

describe('gateway input', () => {
  test('decodes every documented key, with records as base64 JSON', () => {
    const line = encodeGatewayInput({
      userRecordUid: USER,
      providerRecordUid: CONFIG,
      resourceRecordUid: '',
      user: 'my-app',
      newPassword: 'n3w-Passw0rd!',
      oldPassword: 'old-Passw0rd!',
      records: [
        { uid: CONFIG, title: 'Azure config', clientId: 'abc', clientSecret: 'hunter2-secret', tenantId: 't' },
        { uid: ADMIN, title: 'Admin', application_client_id: 'x', client_secret: 'y', tenant_id: 'z', text: 'a', text1: 'b' },
      ],
    });
    const input = parseGatewayInput(`  ${line}\r\n`);
    assert.equal(input.userRecordUid, USER);
    assert.equal(input.providerRecordUid, CONFIG);
    assert.equal(input.resourceRecordUid, undefined, 'an empty UID means absent');
    assert.equal(input.user, 'my-app');
    assert.equal(input.newPassword?.reveal(), 'n3w-Passw0rd!');
    assert.equal(input.oldPassword?.reveal(), 'old-Passw0rd!');
    assert.equal(input.records.length, 2);
    assert.deepEqual(input.records[1], { uid: ADMIN, title: 'Admin', fields: { application_client_id: 'x', client_secret: 'y', tenant_id: 'z', text: 'a', text1: 'b' } });
  });

  test('passwords are Secret values that print as a placeholder', () => {
    const input = parseGatewayInput(b64({ userRecordUid: USER, newPassword: 'super-secret-value' }));
    assert.equal(String(input.newPassword), '[secret]');
    assert.doesNotMatch(JSON.stringify(input), /super-secret-value/);
  });

  test('accepts a line-wrapped base64 blob and an already-decoded records array', () => {
    const line = b64({ userRecordUid: USER, records: [{ uid: CONFIG, title: 't' }] });
    const wrapped = line.replace(/(.{20})/g, '$1\n');
    assert.equal(parseGatewayInput(wrapped).records[0]?.uid, CONFIG);
  });

  test('empty input', () => {
    rejects('', 'INPUT_EMPTY');
    rejects(' \r\n\t ', 'INPUT_EMPTY');
  });

  test('input over 1 MiB', () => {
    rejects(Buffer.alloc(MAX_INPUT_BYTES + 1, 0x41), 'INPUT_TOO_LARGE');
  });

  test('readAll stops reading past the limit', async () => {
    const big = Readable.from([Buffer.alloc(600_000, 0x41), Buffer.alloc(600_000, 0x41)]);
    await assert.rejects(readAll(big), (e: unknown) => e instanceof RotateError && e.code === 'INPUT_TOO_LARGE');
    assert.equal((await readAll(Readable.from(['ab', 'c']))).toString(), 'abc');
  });

  test('a terminal on stdin is refused at once, without reading from it', async () => {
    let read = false;
    const tty = {
      isTTY: true,
      async *[Symbol.asyncIterator]() {
        read = true;
        yield Buffer.from('x');
      },
    };
    await assert.rejects(readAll(tty), (e: unknown) => e instanceof RotateError && e.code === 'INPUT_NOT_PIPED' && e.exitCode === 2);
    assert.equal(read, false);
    // A pipe (isTTY false or absent) is read as usual.
    assert.equal((await readAll(Object.assign(Readable.from(['ok']), { isTTY: false }))).toString(), 'ok');
  });

  test('stdin that stays silent past the idle bound is INPUT_TIMEOUT; slow but steady input is read whole', async () => {
    const silent = new Readable({ read() {} }); // never sends, never ends
    const started = Date.now();
    await assert.rejects(readAll(silent, { idleMs: 200 }), (e: unknown) => e instanceof RotateError && e.code === 'INPUT_TIMEOUT' && e.exitCode === 2);
    assert.ok(Date.now() - started >= 150, 'it waited for the bound');
    assert.ok(silent.destroyed, 'the stream is no longer read');
    // Half a line, then silence: the same.
    const stalled = new Readable({ read() {} });
    stalled.push('abc');
    await assert.rejects(readAll(stalled, { idleMs: 200 }), (e: unknown) => e instanceof RotateError && e.code === 'INPUT_TIMEOUT');
    // Each gap under the bound, the whole well over it: the bound is on silence, not on the total.
    async function* slow() {
      for (const part of ['a', 'b', 'c', 'd']) {
        await new Promise((r) => setTimeout(r, 100));
        yield part;
      }
    }
    assert.equal((await readAll(slow(), { idleMs: 300 })).toString(), 'abcd');
  });

  test('bad base64', () => {
    rejects('this is not base64!', 'INPUT_NOT_BASE64');
    rejects('abc', 'INPUT_NOT_BASE64');
    rejects('ab=c', 'INPUT_NOT_BASE64');
  });

  test('not JSON, or not a JSON object', () => {
    rejects(b64('hello'), 'INPUT_NOT_JSON');
    rejects(Buffer.from([0xff, 0xfe, 0x00, 0x01]).toString('base64'), 'INPUT_NOT_JSON');
    rejects(b64([1, 2]), 'INPUT_INVALID', /JSON object/);
    rejects(b64('"text"'), 'INPUT_INVALID', /JSON object/);
  });

  test('missing or malformed userRecordUid', () => {
    rejects(b64({}), 'INPUT_INVALID', /userRecordUid/);
    rejects(b64({ userRecordUid: 42 }), 'INPUT_INVALID', /userRecordUid/);
    rejects(b64({ userRecordUid: '../../etc/passwd' }), 'INPUT_INVALID', /userRecordUid/);
    rejects(b64({ userRecordUid: USER + 'x' }), 'INPUT_INVALID', /userRecordUid/);
  });

  test('wrong types for the other keys', () => {
    rejects(b64({ userRecordUid: USER, providerRecordUid: 7 }), 'INPUT_INVALID', /providerRecordUid/);
    rejects(b64({ userRecordUid: USER, user: ['a'] }), 'INPUT_INVALID', /"user"/);
    rejects(b64({ userRecordUid: USER, user: 'a\u0000b' }), 'INPUT_INVALID', /control/);
    rejects(b64({ userRecordUid: USER, newPassword: { a: 1 } }), 'INPUT_INVALID', /newPassword/);
  });

  test('records that are not an array of record dictionaries', () => {
    rejects(b64({ userRecordUid: USER, records: b64({ uid: CONFIG }) }), 'INPUT_INVALID', /array/);
    rejects(b64({ userRecordUid: USER, records: 'not base64!' }), 'INPUT_NOT_BASE64', /records/);
    rejects(b64({ userRecordUid: USER, records: b64('nope') }), 'INPUT_NOT_JSON', /records/);
    rejects(b64({ userRecordUid: USER, records: 12 }), 'INPUT_INVALID', /array/);
    rejects(b64({ userRecordUid: USER, records: [null] }), 'INPUT_INVALID', /records"\[0\]/);
    rejects(b64({ userRecordUid: USER, records: [{ title: 'no uid' }] }), 'INPUT_INVALID', /uid/);
    rejects(b64({ userRecordUid: USER, records: [{ uid: CONFIG }, { uid: CONFIG }] }), 'INPUT_INVALID', /twice/);
    rejects(b64({ userRecordUid: USER, records: [{ uid: CONFIG, title: 5 }] }), 'INPUT_INVALID', /title/);
  });

  test('errors never echo input values', () => {
    const secret = 'Sup3r-S3cret-Value';
    const err = rejects(b64({ userRecordUid: secret, newPassword: secret }), 'INPUT_INVALID');
    assert.doesNotMatch(err.message, new RegExp(secret));
    const err2 = rejects(b64({ userRecordUid: USER, newPassword: [secret] }), 'INPUT_INVALID');
    assert.doesNotMatch(err2.message, new RegExp(secret));
  });
});

describe('the gateway input --doctor --record UID [--config UID] stands for', () => {
  const RECORD = 'DemoAzureAppSecret0001';
  const CONFIG = 'DemoPamConfiguration01';
  test('two record UIDs: the input names them, with no records attached and nothing else', () => {
    assert.deepEqual(gatewayInputFromFlags(RECORD, CONFIG), { userRecordUid: RECORD, providerRecordUid: CONFIG, resourceRecordUid: undefined, user: undefined, newPassword: undefined, oldPassword: undefined, records: [] });
    assert.equal(gatewayInputFromFlags(RECORD, undefined).providerRecordUid, undefined);
  });
  test("UIDs are held to the gateway input's rule, and a bad value is never echoed", () => {
    for (const [record, config] of [['', undefined], ['../../etc/passwd', undefined], [`${RECORD}x`, undefined], [RECORD, 'not/a/uid-Hunter2-secret'], [RECORD, RECORD]] as const) {
      assert.throws(
        () => gatewayInputFromFlags(record, config),
        (err: unknown) => err instanceof RotateError && err.code === 'INPUT_INVALID' && !err.message.includes('Hunter2') && !err.message.includes('passwd'),
      );
    }
  });
});
