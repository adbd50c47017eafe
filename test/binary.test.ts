// The keeper-rotate executable as a gateway with no Node.js runs it: built once by `npm run build:binary` into
// a temporary folder, copied alone into an empty one, and run through its wrapper scripts (packaging/wrappers)
// with a PATH that holds no `node`, against the sandbox over HTTPS (and IAM/STS over plain http).
import assert from 'node:assert/strict';
import { DEMO } from '../src/sandbox/demo-vault.js';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { cloneData, readText, writeText } from '../src/keeper/record.js';
import { startSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { assertRotatesDemo } from './helpers/demo-credential.js';
import { NO_PROXY_ENV, assertAllThroughProxy, startForwardProxy } from './helpers/forward-proxy.js';

const ROOT = resolve(import.meta.dirname, '..');
const WRAPPERS = join(ROOT, 'packaging', 'wrappers');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const SCRIPTS = readdirSync(join(ROOT, 'src', 'entrypoints'))
  .filter((f) => f.endsWith('.ts') && f !== 'entry.ts' && f !== 'keeper-rotate.ts')
  .map((f) => f.slice(0, -3));
/** The fixed paths the wrappers look in, which a test points into a temporary folder (see `wrapperAt`). */
const INSTALLED = '/opt/keeper-rotate/bin/keeper-rotate';
const STATE_DIR = '/var/lib/keeper-rotate';

const temp = mkdtempSync(join(tmpdir(), 'keeper-rotate-binary-'));
const built = join(temp, 'built');
const empty = join(temp, 'empty');
/** The only folder on the PATH: a shell and env, and no node. */
const tools = join(temp, 'tools');
const BINARY = join(empty, 'keeper-rotate');
let sandbox: Sandbox;
let httpSandbox: Sandbox;

before(async () => {
  const build = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build-binary.ts', '--outdir', built], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  mkdirSync(empty);
  copyFileSync(join(built, 'keeper-rotate'), BINARY);
  chmodSync(BINARY, 0o755);
  mkdirSync(tools);
  for (const tool of ['sh', 'env']) symlinkSync(join('/bin', tool), join(tools, tool));
  sandbox = await startSandbox({ dir: join(temp, 'sandbox') });
  httpSandbox = await startSandbox({ dir: join(temp, 'http-sandbox'), plainHttp: ['iam', 'sts'] });
});

after(async () => {
  await sandbox?.close();
  await httpSandbox?.close();
  rmSync(temp, { recursive: true, force: true });
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file` in the empty folder with only `env` (PATH: the tools folder, no node), `stdin` piped and closed. */
function run(file: string, args: string[], env: Record<string, string | undefined>, stdin = ''): Promise<Result> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { cwd: empty, env: { PATH: tools, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', fail);
    // A wrapper that finds no program exits without reading its input: the pipe may close under the write.
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });
}

const wrapper = (name: string) => join(WRAPPERS, `${name}.sh`);
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const gatewayLine = (name: string) => encodeGatewayInput(JSON.parse(readFileSync(join(ROOT, 'fixtures', `${name}.json`), 'utf8')) as Record<string, unknown>) + '\n';

/** A copy of a wrapper whose two fixed paths point at `installed` and `stateDir` instead (the rest unchanged). */
function wrapperAt(name: string, installed: string, stateDir: string): string {
  const text = readFileSync(wrapper(name), 'utf8');
  const moved = text.replace(`\ninstalled=${INSTALLED}\n`, `\ninstalled=${installed}\n`).replace(`\nstate_dir=${STATE_DIR}\n`, `\nstate_dir=${stateDir}\n`);
  assert.equal(moved.split('\n').filter((l, i) => l !== text.split('\n')[i]).length, 2, 'both fixed paths were found and moved');
  const copy = join(mkdtempSync(join(temp, 'wrapper-')), `${name}.sh`);
  writeFileSync(copy, moved, { mode: 0o755 });
  return copy;
}

/** Rotates the demo record through `file`, and checks that the record then holds a new credential that works. */
async function rotates(name: string, file: string, on: Sandbox, env: Record<string, string | undefined>): Promise<Result> {
  return assertRotatesDemo(on, name, () => run(file, [], env, gatewayLine(name)));
}

describe('the keeper-rotate executable', () => {
  test('the runs below have no node on their PATH', () => {
    const has = (cmd: string) => spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { env: { PATH: tools }, encoding: 'utf8' });
    assert.notEqual(has('node').status, 0, 'node is on the test PATH');
    assert.equal(has('env').status, 0, 'the check itself finds what is on the PATH');
    assert.deepEqual(readdirSync(empty), ['keeper-rotate']);
  });

  test('--version and --help, without a target', async () => {
    const v = await run(BINARY, ['--version'], {});
    assert.deepEqual(v, { code: 0, stdout: `keeper-rotate ${version}\n`, stderr: '' });
    const h = await run(BINARY, ['--help'], {});
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^Usage: keeper-rotate TARGET /m);
    for (const name of SCRIPTS) assert.match(h.stdout, new RegExp(`^ {2}${name} `, 'm'));
  });

  test('an unknown target, or none: one USAGE line, exit 2', async () => {
    const unknown = await run(BINARY, ['no-such-target'], {});
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^keeper-rotate: USAGE: unknown target "no-such-target"; the first argument names the target: [a-z, -]+ \(see keeper-rotate --help\)\n$/);
    assert.equal(unknown.stdout, 'keeper-rotate: failed: USAGE (exit=2)\n');
    const none = await run(BINARY, [], {});
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^keeper-rotate: USAGE: no target given; [^\n]*\n$/);
  });

  // NODE_DEBUG=keeper-rotate: src/cli/target-assets.ts says which target's asset it loaded and whether V8 took the
  // code cache the build trained for it. A rejected cache would cost time only, so nothing else would show it.
  test("each target's script is loaded only once chosen, with a code cache V8 accepts", async () => {
    for (const args of [['--version'], ['--help'], ['no-such-target']]) {
      const r = await run(BINARY, args, { NODE_DEBUG: 'keeper-rotate' });
      assert.doesNotMatch(r.stderr, /KEEPER-ROTATE/, `${args[0]} loaded a target`);
    }
    for (const name of SCRIPTS) {
      const r = await run(BINARY, [name, '--version'], { NODE_DEBUG: 'keeper-rotate' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`^KEEPER-ROTATE \\d+: ${name}: code cache accepted\\n$`));
    }
  });

  // Each target's SDK adapter is an asset of its own (scripts/build-binary.ts LAZY_ASSETS), loaded when the run
  // connects, with a code cache the build trained; a rejected input never loads it.
  test("a rotation loads its SDK's asset with a code cache V8 accepts; a rejected input does not load it", async () => {
    const sdk: Record<string, string | undefined> = { 'azure-app-secret': 'azure-graph', 'aws-iam-access-key': 'aws-iam', 'aws-ecr-pull-secret': 'aws-ecr', 'wiz-service-account': undefined };
    for (const name of SCRIPTS) {
      assert.ok(Object.hasOwn(sdk, name), `the test knows ${name}'s SDK asset`);
      const r = await run(BINARY, [name], { ...sandbox.env, NODE_DEBUG: 'keeper-rotate' }, gatewayLine(name));
      assert.equal(r.code, 0, r.stderr);
      const loaded = [...r.stderr.matchAll(/^KEEPER-ROTATE \d+: ([\w-]+): code cache (\w+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
      assert.deepEqual(loaded, [`${name} accepted`, ...(sdk[name] ? [`${sdk[name]} accepted`] : [])]);
      const rejected = await run(BINARY, [name], { ...sandbox.env, NODE_DEBUG: 'keeper-rotate' }, 'not base64 json\n');
      assert.equal(rejected.code, 2, rejected.stderr);
      assert.deepEqual([...rejected.stderr.matchAll(/^KEEPER-ROTATE \d+: ([\w-]+): /gm)].map((m) => m[1]), [name]);
    }
  });

  // A V8 flag in the executable's options that changes code generation would make V8 reject the code cache of
  // Node's own modules too (scripts/build-binary.ts, EXEC_ARGV): NODE_DEBUG_NATIVE=CODE_CACHE reports each one.
  test("Node's own modules start from their code cache", async () => {
    const r = await run(BINARY, ['wiz-service-account', '--version'], { NODE_DEBUG_NATIVE: 'CODE_CACHE' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^Code cache of [\w/]+ \(\w+\) is accepted$/m);
    assert.doesNotMatch(r.stderr, /is rejected/);
  });

  // As the .cjs scripts (test/build.test.ts): touching fetch's classes would load all of undici.
  test('report: the fleet report from the executable, with --check, over HTTPS (its own asset)', async () => {
    const r = await run(BINARY, ['report', '--check', '--format', 'json'], sandbox.env);
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout) as { records: Array<{ target: string; check: { state: string } | null }> };
    assert.deepEqual(parsed.records.map((x) => x.target).sort(), ['aws-ecr-pull-secret', 'aws-iam-access-key', 'azure-app-secret', 'wiz-service-account']);
    assert.ok(parsed.records.every((x) => x.check?.state === 'agrees'), r.stdout);
    const usage = await run(BINARY, ['report', '--no-such-flag'], {});
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^keeper-rotate: USAGE: unknown argument "--no-such-flag"/);
  });

  test('no target loads undici', async () => {
    const hook = join(temp, 'undici-hook.cjs');
    writeFileSync(hook, `process.on('exit', () => { if (process.moduleLoadList.some((m) => m.includes('internal/deps/undici'))) require('node:fs').writeSync(2, 'UNDICI LOADED\\n'); });\n`);
    const NODE_OPTIONS = `--require ${JSON.stringify(hook)}`;
    for (const name of SCRIPTS) {
      const r = await run(BINARY, [name], { ...sandbox.env, NODE_OPTIONS }, gatewayLine(name));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${name}: rotated: `));
      assert.doesNotMatch(r.stderr, /UNDICI LOADED/, `${name} loaded undici`);
    }
  });

  for (const name of SCRIPTS) {
    test(`${name}: --version and --help through its wrapper`, async () => {
      const v = await run(wrapper(name), ['--version'], { KEEPER_ROTATE_BIN: BINARY });
      assert.deepEqual(v, { code: 0, stdout: `${name} ${version}\n`, stderr: '' });
      const h = await run(wrapper(name), ['--help'], { KEEPER_ROTATE_BIN: BINARY });
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, /PAM User record fields:/);
      assert.match(h.stdout, new RegExp(`^Usage: keeper-rotate ${name} \\[--dry-run\\]`, 'm'));
    });

    test(`${name}: rotates the demo record through its wrapper over HTTPS`, async () => {
      await rotates(name, wrapper(name), sandbox, { ...sandbox.env, KEEPER_ROTATE_BIN: BINARY });
    });
  }

  // The bundles' http bug ("A dynamic import callback was not specified") in the executable: the AWS SDK
  // imports node:http only for an http:// endpoint.
  test('aws-iam-access-key: rotates through its wrapper with IAM and STS at http:// endpoints', async () => {
    assert.match(httpSandbox.env.AWS_ENDPOINT_URL_IAM!, /^http:\/\//);
    await rotates('aws-iam-access-key', wrapper('aws-iam-access-key'), httpSandbox, { ...httpSandbox.env, KEEPER_ROTATE_BIN: BINARY });
  });

  // Proxies (src/http/proxy.ts) in the executable: every client through a real forward proxy, none around it.
  for (const name of SCRIPTS) {
    test(`${name}: rotates through its wrapper via HTTPS_PROXY, every connection through the proxy`, async () => {
      const proxy = await startForwardProxy();
      try {
        sandbox.log.clear();
        await rotates(name, wrapper(name), sandbox, { ...sandbox.env, ...NO_PROXY_ENV, HTTPS_PROXY: proxy.url, KEEPER_ROTATE_BIN: BINARY });
        assertAllThroughProxy(sandbox, proxy);
      } finally {
        await proxy.close();
      }
    });
  }

  // discover is an asset of its own in the executable (scripts/build-binary.ts), loaded only when asked for.
  test('discover: lists the Azure apps the demo admin owns, and skips the one that already has a record', async () => {
    const r = await run(BINARY, ['discover', 'azure', '--config', DEMO.pamConfigurationUid, '--dry-run'], sandbox.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(literal(DEMO.azure.targetObjectId)), 'the demo app is named');
    assert.match(r.stdout + r.stderr, /already has a record|skipped/i);
  });

  // fs/promises is a stand-in in the bundles (scripts/bundle-options.ts lazyBuiltins): the AWS SDK reads the
  // shared config and credentials files with its readFile, here done by node:fs, and Node 26's fs/promises (which
  // loads readline and the REPL's history) is never loaded. The file must still be read as the SDK reads it.
  test("aws-iam-access-key: USE_INSTANCE_ROLE with a profile in the shared credentials file: the profile signs, and fs/promises is never loaded", async () => {
    const sb = await startSandbox({ dir: join(temp, 'profile-sandbox') });
    try {
      sb.aws.createUser({ userName: 'gateway-profile-user', permissions: 'all' });
      const key = sb.aws.seedAccessKey('gateway-profile-user');
      const file = join(temp, 'aws-credentials');
      writeFileSync(file, `[gateway]\naws_access_key_id = ${key.accessKeyId}\naws_secret_access_key = ${key.secretAccessKey}\n`, { mode: 0o600 });
      const config = cloneData(sb.ksm.readRecord(DEMO.aws.pamConfigurationUid)!.data);
      writeText(config, { label: 'accessKeyId', kind: 'text' }, 'USE_INSTANCE_ROLE');
      writeText(config, { label: 'accessSecretKey', kind: 'secret' }, 'USE_INSTANCE_ROLE');
      sb.ksm.editRecord(DEMO.aws.pamConfigurationUid, config);
      const hook = join(temp, 'fs-promises-hook.cjs');
      writeFileSync(hook, `process.on('exit', () => { if (process.moduleLoadList.includes('NativeModule internal/fs/promises')) require('node:fs').writeSync(2, 'FS PROMISES LOADED\\n'); });\n`);
      const env = { ...sb.env, AWS_SHARED_CREDENTIALS_FILE: file, AWS_CONFIG_FILE: join(temp, 'no-aws-config'), AWS_PROFILE: 'gateway', NODE_OPTIONS: `--require ${JSON.stringify(hook)}` };
      const r = await run(BINARY, ['aws-iam-access-key'], env, gatewayLine('aws-iam-access-key'));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^aws-iam-access-key: rotated: /);
      assert.equal(sb.aws.getKey(key.accessKeyId)?.lastUsed?.serviceName, 'iam', 'the profile key signed the IAM calls');
      assert.deepEqual(sb.log.entries({ service: 'imds' }), [], 'the profile came first; IMDS was not asked');
      assert.doesNotMatch(r.stderr, /FS PROMISES LOADED/);
    } finally {
      await sb.close();
    }
  });

  // As in the .cjs scripts (test/build.test.ts): the IAM and ECR clients' import of the SDK's default credential
  // chain is a stub in their assets; the chain is the aws-host-credentials asset, loaded only by a run on it.
  test("the SDK's default credential chain is not in the AWS clients' assets, only in its own; jsonwebtoken is not in Azure's", async () => {
    const dump = join(temp, 'assets');
    mkdirSync(dump);
    const hook = join(temp, 'asset-dump-hook.cjs');
    writeFileSync(hook, `const sea = require('node:sea'); for (const n of ['aws-iam', 'aws-ecr', 'aws-host-credentials', 'azure-graph']) require('node:fs').writeFileSync(${JSON.stringify(dump)} + '/' + n + '.js', Buffer.from(sea.getRawAsset('targets/' + n + '.js')));\n`);
    const r = await run(BINARY, ['--version'], { NODE_OPTIONS: `--require ${JSON.stringify(hook)}` });
    assert.equal(r.code, 0, r.stderr);
    const chain = (name: string) => {
      const code = readFileSync(join(dump, `${name}.js`), 'utf8');
      return code.includes('AWS_CONTAINER_CREDENTIALS_FULL_URI') && code.includes('credential_process');
    };
    assert.equal(chain('aws-iam'), false, 'a run with keys would compile the host credential chain for nothing');
    assert.equal(chain('aws-ecr'), false);
    assert.equal(chain('aws-host-credentials'), true, 'the chain is an asset of its own');
    // scripts/bundle-options.ts noJsonwebtoken: MSAL signs with jsonwebtoken only for a certificate credential.
    const graph = readFileSync(join(dump, 'azure-graph.js'), 'utf8');
    assert.ok(graph.includes('ConfidentialClientApplication'), 'MSAL is in the Azure asset');
    assert.ok(!graph.includes('JsonWebTokenError'), "MSAL's certificate assertions (jsonwebtoken) are not");
  });

  // Modules of Node's own that a rotation does not use, which Node 26 loads at a cost: scripts/bundle-options.ts
  // defaultImportsOfGlobals (a default import of node:util or node:process, bundled as a copy, made Node build
  // every lazily made property of both: parseArgs, diff, and worker_threads with them), and build-binary.ts
  // AWS_CLIENT_DEFINES (the AWS SDK's probe for a web stream body loaded the web streams).
  test('a rotation does not load worker_threads, util.parseArgs or util.diff (Azure), nor the web streams (AWS)', async () => {
    const hook = join(temp, 'module-list-hook.cjs');
    writeFileSync(hook, `process.on('exit', () => require('node:fs').writeSync(2, 'MODULES ' + process.moduleLoadList.join(',') + '\\n'));\n`);
    const unused: Record<string, string[]> = {
      'azure-app-secret': ['worker_threads', 'internal/util/parse_args/parse_args', 'internal/util/diff'],
      'aws-iam-access-key': ['internal/webstreams/readablestream', 'internal/fs/promises'],
    };
    for (const [name, modules] of Object.entries(unused)) {
      const r = await run(BINARY, [name], { ...sandbox.env, NODE_OPTIONS: `--require ${JSON.stringify(hook)}` }, gatewayLine(name));
      assert.equal(r.code, 0, r.stderr);
      const loaded = /^MODULES (.*)$/m.exec(r.stderr)?.[1]?.split(',') ?? [];
      assert.ok(loaded.includes('NativeModule https'), 'the module list is there');
      for (const m of modules) assert.ok(!loaded.includes(`NativeModule ${m}`), `${name} loaded ${m}`);
    }
  });

  // The Kubernetes client is an asset of its own (scripts/build-binary.ts LAZY_ASSETS), loaded only by a run that
  // delivers to a Secret, and it shares the target asset's own modules: its RotateError is the pipeline's.
  test('aws-iam-access-key: delivers to a Kubernetes Secret through the Kubernetes client, loaded only then', async () => {
    const k8s = await startSandbox({ dir: join(temp, 'k8s-sandbox') });
    try {
      const cluster = k8s.kubernetes.cluster;
      const uid = k8s.demo!.aws.userRecordUid;
      const env = { ...k8s.env, KEEPER_ROTATE_BIN: BINARY, NODE_DEBUG: 'keeper-rotate', KEEPER_ROTATE_ALLOW_K8S_SECRETS: 'demo/*', KEEPER_ROTATE_ALLOW_K8S_RESTARTS: 'demo/app' };
      const plain = await rotates('aws-iam-access-key', wrapper('aws-iam-access-key'), k8s, env);
      assert.doesNotMatch(plain.stderr, /kubernetes-client/, 'a run that delivers nowhere does not load the Kubernetes client');

      const data = cloneData(k8s.ksm.readRecord(uid)!.data);
      writeText(data, { label: 'k8s_secret', kind: 'text' }, 'demo/app-creds');
      writeText(data, { label: 'k8s_restart', kind: 'text' }, 'app');
      k8s.ksm.editRecord(uid, data);
      const delivered = await rotates('aws-iam-access-key', wrapper('aws-iam-access-key'), k8s, env);
      assert.match(delivered.stderr, /^KEEPER-ROTATE \d+: kubernetes-client: code cache absent$/m);
      const secret = cluster.secretText('demo', 'app-creds')!;
      assert.equal(secret.access_key_id, readText(k8s.ksm.readRecord(uid)!.data, 'aws_access_key_id'));
      assert.ok(k8s.aws.checkKey(secret.access_key_id!, secret.secret_access_key!), 'the key in the Secret signs in');

      // A failure inside the client: a RotateError of the pipeline's own class, so a coded line and exit 4.
      k8s.faults.arm({ service: 'kubernetes', operation: 'PatchDeployment', kind: 'status', status: 500, body: '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","reason":"InternalError","code":500}' });
      const failed = await run(BINARY, ['aws-iam-access-key'], env, gatewayLine('aws-iam-access-key'));
      assert.equal(failed.code, 4, failed.stderr);
      assert.match(failed.stderr, /^keeper-rotate: DELIVERY_INCOMPLETE: /m);
      assert.doesNotMatch(failed.stderr, /INTERNAL/);
    } finally {
      await k8s.close();
    }
  });

  test('aws-iam-access-key: http:// IAM and STS through HTTP_PROXY (absolute form), Keeper through HTTPS_PROXY', async () => {
    const proxy = await startForwardProxy();
    try {
      httpSandbox.log.clear();
      await rotates('aws-iam-access-key', wrapper('aws-iam-access-key'), httpSandbox, { ...httpSandbox.env, ...NO_PROXY_ENV, HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, KEEPER_ROTATE_BIN: BINARY });
      assert.ok(proxy.requests.length > 0, 'absolute-form requests reached the proxy');
      assertAllThroughProxy(httpSandbox, proxy);
    } finally {
      await proxy.close();
    }
  });

  test('the cross-built executables are the platform they are named for, with the script injected', () => {
    const head = (file: string, bytes: number) => {
      const fd = openSync(file, 'r');
      const b = Buffer.alloc(bytes);
      readSync(fd, b, 0, bytes, 0);
      closeSync(fd);
      return b;
    };
    // Node flips this fuse's last character from 0 to 1 when it injects a single executable's blob. Read in
    // pieces that overlap by the fuse's length, not whole (the files are 100-150 MB).
    const injected = (file: string) => {
      const fuse = Buffer.from('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1');
      const fd = openSync(file, 'r');
      const piece = Buffer.alloc(8 * 2 ** 20);
      try {
        for (let at = 0; ; at += piece.length - fuse.length) {
          const n = readSync(fd, piece, 0, piece.length, at);
          if (piece.subarray(0, n).includes(fuse)) return true;
          if (n < piece.length) return false;
        }
      } finally {
        closeSync(fd);
      }
    };
    const arm = join(built, 'keeper-rotate-linux-arm64');
    const elf = head(arm, 20);
    assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.equal(elf.readUInt16LE(18), 0xb7, 'e_machine is AArch64');
    assert.ok(statSync(arm).mode & 0o100, 'executable');
    assert.ok(injected(arm));
    const exe = join(built, 'keeper-rotate-win-x64.exe');
    const dos = head(exe, 4096);
    assert.equal(dos.subarray(0, 2).toString('latin1'), 'MZ');
    const pe = dos.readUInt32LE(0x3c);
    assert.equal(dos.subarray(pe, pe + 4).toString('latin1'), 'PE\0\0');
    assert.equal(dos.readUInt16LE(pe + 4), 0x8664, 'machine is x86-64');
    assert.ok(injected(exe));
  });
});

describe('the wrappers', () => {
  test('one per target, the same script but for the target, POSIX sh with LF line ends', () => {
    const shells = readdirSync(WRAPPERS).filter((f) => f.endsWith('.sh'));
    assert.deepEqual(shells.sort(), SCRIPTS.map((n) => `${n}.sh`).sort());
    const first = SCRIPTS[0]!;
    const generic = (name: string) => readFileSync(wrapper(name), 'utf8').replaceAll(name, 'TARGET');
    for (const name of SCRIPTS) {
      const text = readFileSync(wrapper(name), 'utf8');
      assert.match(text, /^#!\/bin\/sh\n/);
      assert.doesNotMatch(text, /\r/);
      assert.match(text, new RegExp(`^target=${name}$`, 'm'));
      assert.ok(statSync(wrapper(name)).mode & 0o100, `${name}.sh is executable`);
      assert.equal(generic(name), generic(first), `${name}.sh differs from ${first}.sh beyond the target name`);
      // The Windows wrapper (not run here: no PowerShell, and the win-x64 executable cannot run on this host).
      assert.match(readFileSync(join(WRAPPERS, `${name}.ps1`), 'utf8'), new RegExp(`^\\$target = '${name}'$`, 'm'));
    }
  });

  test('KEEPER_ROTATE_BIN first, then the installed program, then the one on the PATH; arguments pass through', async () => {
    const home = mkdtempSync(join(temp, 'lookup-'));
    // Stand-ins that say which one ran, and with what.
    const fake = (file: string, label: string) => writeFileSync(file, `#!/bin/sh\necho "${label} $*"\n`, { mode: 0o755 });
    const installed = join(home, 'installed');
    fake(installed, 'installed');
    mkdirSync(join(home, 'path'));
    fake(join(home, 'path', 'keeper-rotate'), 'path');
    const name = 'wiz-service-account';
    const PATH = `${tools}:${join(home, 'path')}`;
    const both = wrapperAt(name, installed, join(home, 'none'));
    assert.deepEqual(await run(both, ['--version'], { PATH, KEEPER_ROTATE_BIN: BINARY }), { code: 0, stdout: `${name} ${version}\n`, stderr: '' });
    assert.deepEqual(await run(both, ['--dry-run', 'a b'], { PATH }), { code: 0, stdout: `installed ${name} --dry-run a b\n`, stderr: '' });
    const pathOnly = wrapperAt(name, join(home, 'missing'), join(home, 'none'));
    assert.deepEqual(await run(pathOnly, ['--doctor'], { PATH }), { code: 0, stdout: `path ${name} --doctor\n`, stderr: '' });
    // The real executable, found each way.
    symlinkSync(BINARY, join(home, 'installed-link'));
    const atInstalled = await run(wrapperAt(name, join(home, 'installed-link'), join(home, 'none')), ['--version'], {});
    assert.deepEqual(atInstalled, { code: 0, stdout: `${name} ${version}\n`, stderr: '' });
    const onPath = await run(pathOnly, ['--version'], { PATH: `${tools}:${empty}` });
    assert.deepEqual(onPath, { code: 0, stdout: `${name} ${version}\n`, stderr: '' });
  });

  test('the state folder the install makes is the default; KEEPER_ROTATE_STATE_DIR still wins', async () => {
    const home = mkdtempSync(join(temp, 'state-'));
    const installedState = join(home, 'var-lib');
    mkdirSync(installedState, { mode: 0o700 });
    const name = 'azure-app-secret';
    const file = wrapperAt(name, join(home, 'missing'), installedState);
    const env: Record<string, string | undefined> = { ...sandbox.env, KEEPER_ROTATE_BIN: BINARY };
    delete env.KEEPER_ROTATE_STATE_DIR;
    await rotates(name, file, sandbox, env);
    assert.equal(readdirSync(installedState).length, 1, "the run kept its gateway's state subfolder there");
    // Told otherwise, the run leaves the install's folder alone (a dry run opens the state folder too).
    const told = join(home, 'told');
    mkdirSync(told, { mode: 0o700 });
    rmSync(installedState, { recursive: true });
    mkdirSync(installedState, { mode: 0o700 });
    const dry = await run(file, ['--dry-run'], { ...env, KEEPER_ROTATE_STATE_DIR: told }, gatewayLine(name));
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(readdirSync(told).length, 1);
    assert.deepEqual(readdirSync(installedState), []);
  });

  test('no program to run: one BINARY_NOT_FOUND line, exit 2', async () => {
    const home = mkdtempSync(join(temp, 'missing-'));
    const name = 'aws-iam-access-key';
    const named = await run(wrapper(name), [], { ...sandbox.env, KEEPER_ROTATE_BIN: join(home, 'keeper-rotate') }, gatewayLine(name));
    assert.equal(named.code, 2);
    assert.equal(named.stdout, '');
    assert.match(named.stderr, new RegExp(`^keeper-rotate: BINARY_NOT_FOUND: KEEPER_ROTATE_BIN names ${literal(join(home, 'keeper-rotate'))}, which is not an executable file; [^\\n]*nothing was changed\\n$`));
    // A file that is there but cannot be run is not a program either.
    const notExecutable = join(home, 'not-executable');
    writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const plain = await run(wrapper(name), ['--version'], { KEEPER_ROTATE_BIN: notExecutable });
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /^keeper-rotate: BINARY_NOT_FOUND: KEEPER_ROTATE_BIN names /);
    // Nothing installed and nothing on the PATH: the message names both places and how to install.
    const file = wrapperAt(name, join(home, 'opt', 'keeper-rotate'), join(home, 'none'));
    const nowhere = await run(file, [], sandbox.env, gatewayLine(name));
    assert.equal(nowhere.code, 2);
    assert.equal(nowhere.stdout, '');
    assert.equal(nowhere.stderr.split('\n').length, 2, 'one line');
    assert.match(nowhere.stderr, new RegExp(`^keeper-rotate: BINARY_NOT_FOUND: keeper-rotate is neither at ${literal(join(home, 'opt', 'keeper-rotate'))} nor on the PATH \\(${literal(tools)}\\); install it \\(see the README\\) or set KEEPER_ROTATE_BIN to its path; nothing was changed\\n$`));
    // A path with a control character in it is not written raw into the gateway's log.
    const controls = await run(wrapper(name), [], { KEEPER_ROTATE_BIN: join(home, 'a\x1b[2Jb') });
    assert.equal(controls.code, 2);
    assert.doesNotMatch(controls.stderr, /\x1b/);
    assert.match(controls.stderr, /names \(a value with unprintable characters\), /);
  });
});
