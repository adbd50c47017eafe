// Real rotations through a real forward proxy (test/helpers/forward-proxy.ts) on loopback, the scripts run as the
// gateway runs them (a child process, one base64 line on stdin), from the sources and as built bundles. Each case
// checks the sandbox's own state and the proxy's log: the rotation's outcome and the credential in the record, a
// CONNECT for every host the run used and for nothing else, and (from each connection's peer address) that no
// connection went around the proxy, or that exactly the NO_PROXY hosts did.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeGatewayInput } from '../../src/gateway/input.js';
import { type Sandbox, type SandboxOptions, startSandbox } from '../../src/sandbox/sandbox.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import { demoCredential } from '../helpers/demo-credential.js';
import { type ForwardProxy, type ForwardProxyOptions, NO_PROXY_ENV, PROXY_SOURCE_ADDRESS, assertAllThroughProxy, deadPort, startForwardProxy } from '../helpers/forward-proxy.js';
import { type ScriptResult, loadFixture, runScript } from '../helpers/run-script.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const TEST = { timeout: 120_000 };
const ERROR_LINE = /^keeper-rotate: ([A-Z_]+): (.*)$/m;

type Script = 'azure-app-secret' | 'aws-iam-access-key' | 'wiz-service-account';
const SCRIPTS: Script[] = ['azure-app-secret', 'aws-iam-access-key', 'wiz-service-account'];

interface World {
  sandbox: Sandbox;
  proxy: ForwardProxy;
  dir: string;
  /** The sandbox's environment, every proxy variable cleared, and Entra signed in at 127.0.0.1 (see below). */
  env: Record<string, string>;
}

/**
 * A fresh sandbox and proxy per case. Entra's authority is addressed as 127.0.0.1 and Graph as localhost (one
 * sandbox server serves both, and its certificate names both), so the proxy's log tells the sign-in from Graph.
 */
async function withWorld(fn: (w: World) => Promise<void>, proxyOptions: ForwardProxyOptions = {}, sandboxOptions: Omit<SandboxOptions, 'dir'> = {}): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-proxy-'));
  const sandbox = await startSandbox({ ...sandboxOptions, dir });
  const proxy = await startForwardProxy(proxyOptions).catch(async (err: unknown) => {
    await sandbox.close();
    throw err;
  });
  try {
    const login = `https://127.0.0.1:${new URL(sandbox.urls.azure!).port}`;
    await fn({ sandbox, proxy, dir, env: { ...sandbox.env, ...NO_PROXY_ENV, AZURE_AUTHORITY_HOST: login } });
  } finally {
    await proxy.close();
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** host:port of every endpoint a run of `script` uses, by the name of the sandbox service that serves it. */
function endpoints(w: World, script: Script): Record<string, { service: string; host: string }> {
  const host = (url: string) => new URL(url).host;
  const ksm = { service: 'ksm', host: host(w.sandbox.urls.ksm!) };
  if (script === 'azure-app-secret') return { ksm, login: { service: 'azure', host: host(w.env.AZURE_AUTHORITY_HOST!) }, graph: { service: 'azure', host: host(w.env.KEEPER_ROTATE_GRAPH_ENDPOINT!) } };
  if (script === 'aws-iam-access-key') return { ksm, iam: { service: 'iam', host: host(w.env.AWS_ENDPOINT_URL_IAM!) }, sts: { service: 'sts', host: host(w.env.AWS_ENDPOINT_URL_STS!) } };
  return { ksm, auth: { service: 'wiz-auth', host: host(w.env.KEEPER_ROTATE_WIZ_AUTH_URL!) }, api: { service: 'wiz-api', host: host(w.env.KEEPER_ROTATE_WIZ_API_URL!) } };
}

/** The peer addresses the sandbox's services saw, per service. */
function peers(sandbox: Sandbox): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const c of sandbox.log.connections()) {
    if (!out.has(c.service)) out.set(c.service, new Set());
    out.get(c.service)!.add(c.remoteAddress);
  }
  return out;
}

/** A rotation that went through the proxy whole: exit 0, a new working credential, every host tunnelled, no bypass. */
async function assertProxiedRotation(w: World, script: Script, run: () => Promise<ScriptResult>): Promise<ScriptResult> {
  const before = demoCredential(w.sandbox, script);
  assert.ok(before.works, 'the demo record starts with a working credential');
  w.sandbox.log.clear();
  w.proxy.clear();
  const r = await run();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${script}: rotated: `));
  const afterRun = demoCredential(w.sandbox, script);
  assert.notEqual(afterRun.secret, before.secret, 'the record holds a new credential');
  assert.ok(afterRun.works, 'the new credential in the record works');
  // A CONNECT for every host the run used, and for no other.
  const hosts = endpoints(w, script);
  assert.deepEqual(new Set(w.proxy.connects), new Set(Object.values(hosts).map((h) => h.host)), `CONNECTs: ${w.proxy.connects.join(', ')}`);
  // Every connection any sandbox service accepted came from the proxy: none went around it.
  const seen = peers(w.sandbox);
  for (const { service } of Object.values(hosts)) assert.ok(seen.has(service), `${service} saw a connection`);
  for (const [service, addresses] of seen) assert.deepEqual([...addresses], [PROXY_SOURCE_ADDRESS], `${service} was reached only through the proxy`);
  return r;
}

/** An AWS rotation against http:// IAM and STS: KSM tunnelled, IAM and STS as absolute-form requests, nothing around the proxy. */
function assertHttpEndpointsProxied(w: World, r: ScriptResult): void {
  assert.equal(r.code, 0, r.stderr);
  assert.ok(demoCredential(w.sandbox, 'aws-iam-access-key').works);
  assert.deepEqual(w.proxy.connects.every((c) => c === new URL(w.sandbox.urls.ksm!).host), true, `CONNECTs: ${w.proxy.connects.join(', ')}`);
  for (const service of ['iam', 'sts']) assert.ok(w.proxy.requests.some((u) => u.startsWith(`${w.sandbox.urls[service]}/`)), `${service} in absolute form: ${w.proxy.requests.join(', ')}`);
  assertAllThroughProxy(w.sandbox, w.proxy);
}

describe('rotations through a forward proxy (sources, as the gateway runs them)', () => {
  for (const script of SCRIPTS) {
    test(`${script}: HTTPS_PROXY carries every client (KSM and the target's), nothing goes around it`, TEST, () =>
      withWorld(async (w) => {
        await assertProxiedRotation(w, script, () => runScript(script, loadFixture(script), { ...w.env, HTTPS_PROXY: w.proxy.url }));
      }),
    );
  }

  // Also what tells our rules from @azure/core-rest-pipeline's own proxy policy, which reads HTTPS_PROXY first.
  for (const script of SCRIPTS) {
    test(`${script}: the lower-case https_proxy works the same, and wins over HTTPS_PROXY`, TEST, () =>
      withWorld(async (w) => {
        const dead = await deadPort();
        await assertProxiedRotation(w, script, () => runScript(script, loadFixture(script), { ...w.env, https_proxy: w.proxy.url, HTTPS_PROXY: `http://127.0.0.1:${dead}` }));
      }),
    );
  }

  test('an https:// proxy (TLS to the proxy itself, trusted like any server) carries a rotation', TEST, () =>
    withWorld(
      async (w) => {
        assert.match(w.proxy.url, /^https:\/\//);
        await assertProxiedRotation(w, 'azure-app-secret', () => runScript('azure-app-secret', loadFixture('azure-app-secret'), { ...w.env, HTTPS_PROXY: w.proxy.url }));
      },
      { tls: sandboxTlsMaterial() },
    ),
  );

  test('proxy credentials in the URL are sent to the proxy and never printed', TEST, () =>
    withWorld(
      async (w) => {
        const url = w.proxy.url.replace('//', '//gateway%40corp:pr0xy-S3cret%3Apw@');
        const r = await assertProxiedRotation(w, 'aws-iam-access-key', () => runScript('aws-iam-access-key', loadFixture('aws-iam-access-key'), { ...w.env, HTTPS_PROXY: url }));
        const expected = `Basic ${Buffer.from('gateway@corp:pr0xy-S3cret:pw').toString('base64')}`;
        assert.ok(w.proxy.authorizations.length > 0 && w.proxy.authorizations.every((a) => a === expected), 'every CONNECT carried the credentials');
        for (const text of [r.stdout, r.stderr]) {
          assert.ok(!text.includes('pr0xy-S3cret'), 'no password in the output');
          assert.ok(!text.includes(expected.slice(6)), 'no Proxy-Authorization value in the output');
        }
      },
      { credentials: { user: 'gateway@corp', password: 'pr0xy-S3cret:pw' } },
    ),
  );

  test('NO_PROXY: the hosts it names (an address, a host:port) go direct, and only they', TEST, () =>
    withWorld(async (w) => {
      const hosts = endpoints(w, 'azure-app-secret');
      // Keeper by host and port, Entra's sign-in by address: Graph (localhost, another port than Keeper's) stays proxied.
      const noProxy = `example.invalid, ${hosts.ksm!.host} ,127.0.0.1`;
      w.sandbox.log.clear();
      const r = await runScript('azure-app-secret', loadFixture('azure-app-secret'), { ...w.env, HTTPS_PROXY: w.proxy.url, no_proxy: noProxy });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(demoCredential(w.sandbox, 'azure-app-secret').works);
      assert.deepEqual(new Set(w.proxy.connects), new Set([hosts.graph!.host]), `CONNECTs: ${w.proxy.connects.join(', ')}`);
      const seen = peers(w.sandbox);
      assert.deepEqual([...seen.get('ksm')!], ['127.0.0.1'], 'Keeper was reached directly');
      assert.deepEqual([...seen.get('azure')!].sort(), ['127.0.0.1', PROXY_SOURCE_ADDRESS], 'Entra directly, Graph through the proxy');
    }),
  );

  test('aws-iam-access-key with IAM and STS at http:// endpoints: HTTP_PROXY gets them in absolute form, HTTPS_PROXY the rest', TEST, () =>
    withWorld(
      async (w) => {
        assert.match(w.env.AWS_ENDPOINT_URL_IAM!, /^http:\/\//);
        w.sandbox.log.clear();
        const r = await runScript('aws-iam-access-key', loadFixture('aws-iam-access-key'), { ...w.env, HTTPS_PROXY: w.proxy.url, HTTP_PROXY: w.proxy.url });
        assertHttpEndpointsProxied(w, r);
      },
      {},
      { plainHttp: ['iam', 'sts'] },
    ),
  );

  test("a proxy in the shell does not reach the sandbox: its env names loopback in NO_PROXY and no_proxy", TEST, () =>
    withWorld(async (w) => {
      const dead = `http://127.0.0.1:${await deadPort()}`;
      const shell = { HTTPS_PROXY: dead, https_proxy: dead, NO_PROXY: 'corp.example', no_proxy: 'corp.example' };
      w.sandbox.log.clear();
      const r = await runScript('aws-iam-access-key', loadFixture('aws-iam-access-key'), { ...shell, ...w.sandbox.env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(w.sandbox.env.no_proxy, w.sandbox.env.NO_PROXY);
      for (const [service, addresses] of peers(w.sandbox)) assert.deepEqual([...addresses], ['127.0.0.1'], service);
    }),
  );

  test('NO_PROXY=* sends everything direct: the proxy sees nothing', TEST, () =>
    withWorld(async (w) => {
      w.sandbox.log.clear();
      const r = await runScript('wiz-service-account', loadFixture('wiz-service-account'), { ...w.env, HTTPS_PROXY: w.proxy.url, NO_PROXY: '*' });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(w.proxy.connects, []);
      for (const [service, addresses] of peers(w.sandbox)) assert.deepEqual([...addresses], ['127.0.0.1'], service);
    }),
  );
});

describe('a proxy that refuses fails the run with a coded line, and changes nothing', () => {
  const refused = async (w: World, script: Script, env: Record<string, string>, password?: string) => {
    const before = demoCredential(w.sandbox, script);
    const r = await runScript(script, loadFixture(script), { ...w.env, ...env });
    assert.ok(r.code === 2 || r.code === 3, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, ERROR_LINE);
    const after = demoCredential(w.sandbox, script);
    assert.equal(after.secret, before.secret, 'the record is unchanged');
    assert.ok(after.works, "the record's credential still works");
    if (password) for (const text of [r.stdout, r.stderr]) assert.ok(!text.includes(password), 'no proxy password in the output');
    return ERROR_LINE.exec(r.stderr)!;
  };

  test('407 from the proxy at Keeper: exit 3, KEEPER_REQUEST_FAILED naming the proxy (not the password)', TEST, () =>
    withWorld(
      async (w) => {
        const url = w.proxy.url.replace('//', '//gw:wr0ng-Passw0rd@');
        const [, code, message] = await refused(w, 'azure-app-secret', { HTTPS_PROXY: url }, 'wr0ng-Passw0rd');
        assert.equal(code, 'KEEPER_REQUEST_FAILED');
        assert.match(message!, new RegExp(`the proxy ${w.proxy.url.replace(/[.]/g, '\\.')} from HTTPS_PROXY refused the tunnel to localhost:\\d+: HTTP 407`));
        assert.ok(w.proxy.connects.length > 0, 'the proxy was asked');
        assert.deepEqual(w.sandbox.log.entries(), [], 'no request reached any service');
      },
      { credentials: { user: 'gw', password: 'the-right-one' } },
    ),
  );

  for (const script of SCRIPTS) {
    test(`${script}: 407 at the target (Keeper in NO_PROXY): exit 3, a coded line, the record untouched`, TEST, () =>
      withWorld(
        async (w) => {
          const ksm = new URL(w.sandbox.urls.ksm!).host;
          const [, code, message] = await refused(w, script, { HTTPS_PROXY: w.proxy.url.replace('//', '//gw:n0t-the-Passw0rd@'), NO_PROXY: ksm }, 'n0t-the-Passw0rd');
          assert.match(code!, /^TARGET_/);
          assert.match(message!, /refused the tunnel to .*HTTP 407/);
          assert.ok(!w.proxy.connects.includes(ksm), 'Keeper was not asked through the proxy');
          const targetCalls = w.sandbox.log.entries().filter((e) => e.service !== 'ksm');
          assert.deepEqual(targetCalls, [], 'no request reached the target');
        },
        { credentials: { user: 'gw', password: 'the-right-one' } },
      ),
    );
  }

  test('a proxy that is down: exit 3, KEEPER_REQUEST_FAILED saying it cannot reach the proxy', TEST, () =>
    withWorld(async (w) => {
      const port = await deadPort();
      const [, code, message] = await refused(w, 'wiz-service-account', { HTTPS_PROXY: `http://user:d0wn-Passw0rd@127.0.0.1:${port}` }, 'd0wn-Passw0rd');
      assert.equal(code, 'KEEPER_REQUEST_FAILED');
      assert.match(message!, new RegExp(`cannot reach the proxy http://127\\.0\\.0\\.1:${port} from HTTPS_PROXY \\(ECONNREFUSED\\)`));
      assert.deepEqual(w.sandbox.log.entries(), []);
    }),
  );

  test('a proxy URL the scripts cannot use: exit 2, PROXY_INVALID before any request, the value not echoed', TEST, () =>
    withWorld(async (w) => {
      const [, code, message] = await refused(w, 'aws-iam-access-key', { HTTPS_PROXY: 'socks5://user:s0cks-Passw0rd@127.0.0.1:1080' }, 's0cks-Passw0rd');
      assert.equal(code, 'PROXY_INVALID');
      assert.match(message!, /^HTTPS_PROXY names a "socks5" proxy/);
      assert.deepEqual(w.sandbox.log.connections(), [], 'nothing was sent anywhere');
      assert.deepEqual(w.proxy.connects, []);
    }),
  );
});

describe('private CAs through the proxy', () => {
  test('TLS is verified end to end inside the tunnel: without the CA the run fails (exit 3), it never trusts the proxy instead', TEST, () =>
    withWorld(async (w) => {
      const r = await runScript('azure-app-secret', loadFixture('azure-app-secret'), { ...w.env, HTTPS_PROXY: w.proxy.url, NODE_EXTRA_CA_CERTS: '' });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /^keeper-rotate: KEEPER_REQUEST_FAILED: .*(SELF_SIGNED|UNABLE_TO_VERIFY|CERT)/m);
      assert.ok(w.proxy.connects.length > 0, 'the tunnel was opened');
      assert.deepEqual(w.sandbox.log.entries(), [], 'no request was sent over the unverified connection');
    }),
  );

  for (const script of SCRIPTS) {
    test(`${script}: the CA from OpenSSL's store (NODE_OPTIONS=--use-openssl-ca, SSL_CERT_FILE), no NODE_EXTRA_CA_CERTS`, TEST, () =>
      withWorld(async (w) => {
        const ca = w.env.NODE_EXTRA_CA_CERTS!;
        await assertProxiedRotation(w, script, () =>
          runScript(script, loadFixture(script), { ...w.env, HTTPS_PROXY: w.proxy.url, NODE_EXTRA_CA_CERTS: '', NODE_OPTIONS: '--use-openssl-ca', SSL_CERT_FILE: ca, SSL_CERT_DIR: '' }),
        );
      }),
    );
  }
});

describe('built bundles through a forward proxy', () => {
  const built = mkdtempSync(join(tmpdir(), 'keeper-rotate-proxy-built-'));
  const empty = mkdtempSync(join(tmpdir(), 'keeper-rotate-proxy-empty-'));

  before(() => {
    const build = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts', '--outdir', built], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    for (const name of readdirSync(built)) copyFileSync(join(built, name), join(empty, name));
  });

  after(() => {
    for (const d of [built, empty]) rmSync(d, { recursive: true, force: true });
  });

  /** Runs a bundle from an empty folder with only PATH and the given variables, as build.test.ts does. */
  const runBundle = (script: Script, env: Record<string, string>): Promise<ScriptResult> =>
    new Promise((done) => {
      const child = spawn(process.execPath, [join(empty, `${script}.cjs`)], { cwd: empty, env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      child.stdin.end(encodeGatewayInput(loadFixture(script)) + '\n');
      child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
    });

  for (const script of SCRIPTS) {
    test(`${script}.cjs: rotates through the proxy, every client tunnelled, nothing around it`, TEST, () =>
      withWorld(async (w) => {
        assert.match(readFileSync(join(empty, `${script}.cjs`), 'utf8'), /^#!\/usr\/bin\/env node\n/);
        await assertProxiedRotation(w, script, () => runBundle(script, { ...w.env, HTTPS_PROXY: w.proxy.url }));
      }),
    );
  }

  test('aws-iam-access-key.cjs with IAM and STS at http:// endpoints, through HTTP_PROXY', TEST, () =>
    withWorld(
      async (w) => {
        w.sandbox.log.clear();
        assertHttpEndpointsProxied(w, await runBundle('aws-iam-access-key', { ...w.env, HTTPS_PROXY: w.proxy.url, HTTP_PROXY: w.proxy.url }));
      },
      {},
      { plainHttp: ['iam', 'sts'] },
    ),
  );

  test('wiz-service-account.cjs: a refusing proxy fails with a coded line and no password', TEST, () =>
    withWorld(
      async (w) => {
        const r = await runBundle('wiz-service-account', { ...w.env, HTTPS_PROXY: w.proxy.url.replace('//', '//gw:bundle-Passw0rd@') });
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /^keeper-rotate: KEEPER_REQUEST_FAILED: .*refused the tunnel .*HTTP 407/m);
        assert.ok(!`${r.stdout}${r.stderr}`.includes('bundle-Passw0rd'));
      },
      { credentials: { user: 'gw', password: 'other' } },
    ),
  );
});
