// The proxy rules (src/http/proxy.ts): which variable wins, what a proxy URL may be, and curl's NO_PROXY
// matching, case by case. The end-to-end proof that every client follows them is proxy-rotation.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RotateError } from '../../src/errors.js';
import { describeProxyRules, noProxyMatcher, parseProxyUrl, proxyFor, proxyForUrl, proxyRules } from '../../src/http/proxy.js';
import { redact } from '../../src/secret.js';

describe('the proxy variables', () => {
  test('https URLs use HTTPS_PROXY, http URLs HTTP_PROXY; neither stands in for the other', () => {
    const rules = proxyRules({ HTTPS_PROXY: 'http://secure.corp:3128', HTTP_PROXY: 'http://plain.corp:8080' });
    assert.equal(proxyForUrl(rules, 'https://login.microsoftonline.com/x')?.display, 'http://secure.corp:3128');
    assert.equal(proxyForUrl(rules, 'http://localstack:4566/')?.display, 'http://plain.corp:8080');
    assert.equal(proxyForUrl(proxyRules({ HTTP_PROXY: 'http://plain.corp:8080' }), 'https://iam.amazonaws.com/'), undefined);
    assert.equal(proxyForUrl(proxyRules({ HTTPS_PROXY: 'http://secure.corp:3128' }), 'http://localstack:4566/'), undefined);
  });

  test('the lower-case name wins, an empty value is unset, ALL_PROXY is not read', () => {
    assert.equal(proxyRules({ https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }).https?.display, 'http://lower:1');
    assert.equal(proxyRules({ https_proxy: '  ', HTTPS_PROXY: 'http://upper:2' }).https?.display, 'http://upper:2');
    assert.equal(proxyRules({ http_proxy: 'http://lower:1', HTTP_PROXY: 'http://upper:2' }).http?.display, 'http://lower:1');
    const none = proxyRules({ ALL_PROXY: 'http://all:3', all_proxy: 'socks5://all:4' });
    assert.equal(none.https, undefined);
    assert.equal(none.http, undefined);
    assert.equal(proxyRules({ no_proxy: 'a.corp', NO_PROXY: '*' }).bypass('b.corp', 443), false, 'no_proxy wins over NO_PROXY');
  });

  test('a proxy URL: scheme defaults to http://, ports to 80 and 443, IPv6 in brackets', () => {
    assert.deepEqual(parseProxyUrl('HTTPS_PROXY', 'proxy.corp:3128').display, 'http://proxy.corp:3128');
    assert.equal(parseProxyUrl('HTTPS_PROXY', 'http://proxy.corp').port, 80);
    const tls = parseProxyUrl('HTTPS_PROXY', 'HTTPS://Proxy.Corp/');
    assert.equal(tls.protocol, 'https:');
    assert.equal(tls.port, 443);
    assert.equal(tls.display, 'https://proxy.corp:443');
    const v6 = parseProxyUrl('HTTPS_PROXY', 'http://[fd00::1]:3128');
    assert.equal(v6.host, 'fd00::1');
    assert.equal(v6.display, 'http://[fd00::1]:3128');
  });

  test('credentials become a Proxy-Authorization value that every printed text is scrubbed of', () => {
    const p = parseProxyUrl('HTTPS_PROXY', 'http://gw%40corp:p%3Ass%2Fw0rd-xyz@proxy.corp:3128');
    assert.equal(p.display, 'http://proxy.corp:3128', 'no credentials in the displayed form');
    const header = `Basic ${Buffer.from('gw@corp:p:ss/w0rd-xyz').toString('base64')}`;
    assert.equal(p.auth?.reveal(), header);
    assert.equal(String(p.auth), '[secret]');
    assert.equal(redact(`password p:ss/w0rd-xyz and header ${header}`), 'password [secret] and header Basic [secret]');
    assert.equal(parseProxyUrl('HTTPS_PROXY', 'http://proxy.corp:3128').auth, undefined);
  });

  test('a proxy URL the scripts cannot use is PROXY_INVALID, naming the variable and never the value', () => {
    const cases: Array<[string, RegExp]> = [
      ['socks5://user:s3cret-value@proxy:1080', /^HTTPS_PROXY names a "socks5" proxy/],
      ['socks4a://proxy:1080', /"socks4a" proxy/],
      ['http://', /is not a URL|names no host/],
      ['http://user:%zz-s3cret-value@proxy:3128', /not valid percent-encoding/],
    ];
    for (const [value, message] of cases) {
      assert.throws(
        () => proxyRules({ HTTPS_PROXY: value }),
        (err: unknown) => err instanceof RotateError && err.code === 'PROXY_INVALID' && err.exitCode === 2 && message.test(err.message) && !err.message.includes('s3cret-value'),
        value,
      );
    }
  });
});

describe('NO_PROXY, as curl matches it', () => {
  const bypass = (noProxy: string, host: string, port = 443) => noProxyMatcher(noProxy).bypass(host, port);

  test('a name matches itself and every name under it, on a label boundary', () => {
    assert.ok(bypass('example.com', 'example.com'));
    assert.ok(bypass('example.com', 'api.example.com'));
    assert.ok(bypass('example.com', 'a.b.example.com'));
    assert.ok(!bypass('example.com', 'badexample.com'));
    assert.ok(!bypass('example.com', 'example.com.evil.net'));
    assert.ok(!bypass('api.example.com', 'example.com'));
  });

  test('a leading "." or "*." is ignored; case and a trailing dot do not matter', () => {
    for (const entry of ['.example.com', '*.example.com', 'EXAMPLE.com', 'example.com.']) {
      assert.ok(bypass(entry, 'example.com'), entry);
      assert.ok(bypass(entry, 'Login.Example.COM.'), entry);
      assert.ok(!bypass(entry, 'example.org'), entry);
    }
  });

  test('"*" matches everything; other wildcards are not patterns', () => {
    assert.ok(bypass('*', 'anything.at.all'));
    assert.ok(bypass('a.corp, *', '10.1.2.3'));
    assert.ok(!bypass('login.*.com', 'login.microsoftonline.com'));
    assert.ok(!bypass('', 'example.com'));
  });

  test('entries are separated by commas or white space; unreadable ones are skipped', () => {
    const m = noProxyMatcher(' a.corp ,b.corp\tc.corp,,[bad, 10.0.0.0/99 ,d.corp');
    for (const host of ['a.corp', 'x.b.corp', 'c.corp', 'd.corp']) assert.ok(m.bypass(host, 443), host);
    assert.ok(!m.bypass('10.0.0.1', 443));
    assert.deepEqual(m.entries, ['a.corp', 'b.corp', 'c.corp', '[bad', '10.0.0.0/99', 'd.corp']);
  });

  test('host:port matches that port only', () => {
    assert.ok(bypass('keeper.corp:8443', 'keeper.corp', 8443));
    assert.ok(!bypass('keeper.corp:8443', 'keeper.corp', 443));
    assert.ok(bypass('localhost:4566', 'localhost', 4566));
    assert.ok(bypass('[::1]:4566', '::1', 4566));
    assert.ok(!bypass('[::1]:4566', '::1', 4567));
    assert.ok(bypass('10.0.0.5:443', '10.0.0.5', 443));
  });

  test('addresses and CIDR ranges match hosts named by address, never names', () => {
    assert.ok(bypass('10.0.0.0/8', '10.20.30.40'));
    assert.ok(!bypass('10.0.0.0/8', '11.0.0.1'));
    assert.ok(bypass('127.0.0.1', '127.0.0.1'));
    assert.ok(!bypass('127.0.0.1', '127.0.0.2'));
    assert.ok(!bypass('127.0.0.1', 'localhost'), 'a name is not resolved to match an address');
    assert.ok(bypass('fd00::/8', 'fd12:3456::1'));
    assert.ok(bypass('::1', '[::1]'));
    assert.ok(bypass('169.254.169.254', '169.254.169.254', 80));
    assert.ok(!bypass('10.0.0.0/8', '10.corp'));
  });

  test('nothing is bypassed implicitly, not even localhost', () => {
    const rules = proxyRules({ HTTPS_PROXY: 'http://proxy:3128' });
    assert.ok(proxyFor(rules, true, 'localhost', 443));
    assert.ok(proxyFor(rules, true, '127.0.0.1', 443));
    assert.equal(proxyFor(proxyRules({ HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'localhost' }), true, 'localhost', 8443), undefined);
  });
});

describe('what --doctor prints', () => {
  test('each proxy without credentials, NO_PROXY, and the route to each host', () => {
    const rules = proxyRules({ HTTPS_PROXY: 'http://gw:hunter2-secret@proxy.corp:3128', NO_PROXY: 'keepersecurity.com' });
    const d = describeProxyRules(rules, { Keeper: 'https://keepersecurity.com/', Graph: 'https://graph.microsoft.com/' });
    assert.equal(d.detail, 'https through http://proxy.corp:3128 (HTTPS_PROXY, with credentials); http direct');
    assert.deepEqual(d.notes, ['NO_PROXY: keepersecurity.com', 'Keeper (keepersecurity.com): direct', 'Graph (graph.microsoft.com): through the proxy']);
    assert.ok(!JSON.stringify(d).includes('hunter2'));
    assert.match(describeProxyRules(proxyRules({}), {}).detail, /^no proxy/);
  });
});
