import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { RotateError } from '../../src/errors.js';
import { LINUX_CONFIG_PATH, WINDOWS_CONFIG_PATH, loadGatewayConfig } from '../../src/keeper/config.js';

const CONFIG = { hostname: 'localhost:1234', clientId: 'Y2xpZW50', privateKey: 'cHJpdg==', appKey: 'YXBw', serverPublicKeyId: '10' };
const dir = mkdtempSync(join(tmpdir(), 'kr-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function rejected(fn: () => unknown, code: string, mentions: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof RotateError && e.code === code && e.exitCode === 2 && mentions.test(e.message));
}

describe('gateway config', () => {
  test('KEEPER_GATEWAY_CONFIG names a JSON file', () => {
    const path = join(dir, 'gw.json');
    writeFileSync(path, JSON.stringify(CONFIG));
    const cfg = loadGatewayConfig({ env: { KEEPER_GATEWAY_CONFIG: path, GATEWAY_CONFIG: 'ignored' }, platform: 'linux' });
    assert.equal(cfg.source, path);
    assert.equal(cfg.hostname, 'localhost:1234');
    assert.equal(cfg.values.serverPublicKeyId, '10');
  });

  test('a file holding base64 JSON is accepted too', () => {
    const path = join(dir, 'gw.b64');
    writeFileSync(path, Buffer.from(JSON.stringify(CONFIG)).toString('base64') + '\n');
    assert.equal(loadGatewayConfig({ env: { KEEPER_GATEWAY_CONFIG: path }, platform: 'linux' }).values.clientId, 'Y2xpZW50');
  });

  test('GATEWAY_CONFIG holds base64 (Docker)', () => {
    const cfg = loadGatewayConfig({ env: { GATEWAY_CONFIG: Buffer.from(JSON.stringify(CONFIG)).toString('base64') }, platform: 'linux' });
    assert.equal(cfg.source, 'GATEWAY_CONFIG');
    assert.equal(cfg.values.appKey, 'YXBw');
  });

  test('the platform default path is where it looks last', () => {
    const seen: string[] = [];
    const readFile = (p: string) => {
      seen.push(p);
      return JSON.stringify(CONFIG);
    };
    loadGatewayConfig({ env: {}, platform: 'linux', readFile });
    loadGatewayConfig({ env: {}, platform: 'win32', readFile });
    assert.deepEqual(seen, [LINUX_CONFIG_PATH, WINDOWS_CONFIG_PATH]);
  });

  test('a missing config names the place it looked', () => {
    rejected(() => loadGatewayConfig({ env: { KEEPER_GATEWAY_CONFIG: join(dir, 'nope.json') }, platform: 'linux' }), 'CONFIG_NOT_FOUND', /nope\.json.*no such file/);
    rejected(() => loadGatewayConfig({ env: {}, platform: 'linux', readFile: () => { throw Object.assign(new Error('x'), { code: 'ENOENT' }); } }), 'CONFIG_NOT_FOUND', /\/etc\/keeper-gateway\/gateway-config\.json/);
    rejected(() => loadGatewayConfig({ env: { KEEPER_GATEWAY_CONFIG: dir }, platform: 'linux' }), 'CONFIG_NOT_FOUND', /directory/);
  });

  test('an unreadable config says so', () => {
    // Tests may run as root, who reads any file, so the permission error comes from the reader.
    const readFile = () => {
      throw Object.assign(new Error('x'), { code: 'EACCES' });
    };
    rejected(() => loadGatewayConfig({ env: { KEEPER_GATEWAY_CONFIG: '/srv/gw.json' }, platform: 'linux', readFile }), 'CONFIG_NOT_FOUND', /\/srv\/gw\.json.*permission denied/);
  });

  test('garbage, non-objects and unbound configs are CONFIG_INVALID', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['%%%', /neither JSON nor base64/],
      ['{"hostname": ', /not valid JSON/],
      ['[1]', /neither JSON nor base64|not a JSON object/],
      [JSON.stringify({ ...CONFIG, appKey: undefined }), /lacks appKey/],
      [JSON.stringify({ hostname: 'h', clientId: 'c', clientKey: 'k', privateKey: 'p' }), /not bound it yet/],
    ];
    for (const [text, why] of cases) {
      rejected(() => loadGatewayConfig({ env: { GATEWAY_CONFIG: text || ' ' }, platform: 'linux' }), 'CONFIG_INVALID', why);
    }
  });
});
