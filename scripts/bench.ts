// `npm run bench`: how fast and how lean each built script is, against the sandbox, next to `node -e 0` on the
// same machine. Each run spawns `node -e 0` and then the script, one after the other, so machine noise hits both
// alike; the figures are ratios of each pair, summarised as median and spread. The keeper-rotate executable is
// measured in the same runs, interleaved with the scripts: its `--version` against `node -e 0`, its rotations
// against the same rotation by the .cjs, its peak memory against its own runtime's `-e 0`. Writes
// bench/<date>-<sha>.json and bench/latest.json; DEVELOPMENT.md's "Benchmark" section explains every figure.
//
//   npm run bench [-- --runs 10] [--target NAME ...] [--delays 3000,30000,120000] [--long-runs 1] [--out FILE]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, arch, release, totalmem, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { cloneData, writeText } from '../src/keeper/record.js';
import type { RequestLogEntry } from '../src/sandbox/faults.js';
import { startSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { SANDBOX_TLS_DIR_ENV, generateTlsMaterial } from '../src/sandbox/tls.js';
import { SANDBOX_NO_PROXY } from '../src/sandbox/sandbox.js';
import { buildInputs, isStale } from './build-inputs.js';
import { type DeliverySample, deliveryFigures, deliveryPair } from './bench-delivery.js';
import { type Stats, quantile, stats } from './bench-stats.js';
import { type FleetFigures, fleetRows } from './bench-fleet.js';
import { NODE_VERSION, hostPlatform, runtimeBinary } from './node-runtime.js';

// ---------------------------------------------------------------------------------------------------------------
// What each target must do at least: the protocol's minimum, one line per request with the reason. The README
// lists the same. `first` is a rotation from the demo state; `steady` is every later one (AWS must delete LAST
// once two keys exist; Azure retires the secret the previous rotation kept).

interface MinimumRequest {
  service: string;
  operation: string;
  why: string;
  /** Only from the second rotation on. */
  steadyOnly?: boolean;
}

/** Requests the sandbox sees that the real service does not get, with the reason. */
interface SandboxOnly {
  service: string;
  operation: string;
  why: string;
}

interface BenchTarget {
  script: string;
  minimum: MinimumRequest[];
  sandboxOnly: SandboxOnly[];
  /** The propagation-delay case: how to set the delay, and which requests create and verify the credential. */
  propagation?: {
    set(sandbox: Sandbox, ms: number): void;
    create: { service: string; operation: string };
    verify: { service: string; operation: string };
  };
}

const KSM_GET: MinimumRequest = { service: 'ksm', operation: 'get_secret', why: 'read the PAM User record and the PAM configuration, in one request' };
const KSM_SAVE: MinimumRequest = { service: 'ksm', operation: 'update_secret', why: 'save the new credential in a rotation transaction, checked against the revision read' };
const KSM_FINALIZE: MinimumRequest = { service: 'ksm', operation: 'finalize_secret_update', why: 'finalize the transaction once the new credential is verified' };

const TARGETS: BenchTarget[] = [
  {
    script: 'azure-app-secret',
    minimum: [
      KSM_GET,
      { service: 'azure', operation: 'token', why: 'client-credentials token for Graph with the admin secret' },
      // The same read gives the appId the admin guard compares with the admin's client ID. An allow-list of
      // `owned` (KEEPER_ROTATE_ALLOW_AZURE_APPS) adds one GET /applications/{id}/owners; the bench sets none.
      { service: 'azure', operation: 'getApplication', why: "read the application's password credentials (to plan what to keep and retire) and its appId" },
      { service: 'azure', operation: 'addPassword', why: 'create the new secret' },
      KSM_SAVE,
      { service: 'azure', operation: 'token', why: 'verify: a token with the new secret (the only proof it signs in)' },
      KSM_FINALIZE,
      { service: 'azure', operation: 'removePassword', why: 'retire the secret beyond keep_previous_secrets (one per retired secret)', steadyOnly: true },
    ],
    sandboxOnly: [
      {
        service: 'azure',
        operation: 'openidConfiguration',
        why: 'MSAL reads the authority metadata of hosts it does not know, once per credential; for login.microsoftonline.com (.us, .cn) it has the metadata built in and makes no request',
      },
    ],
    propagation: {
      set: (sb, ms) => sb.azure.setPropagationDelay(sb.demo!.azure.tenantId, ms),
      create: { service: 'azure', operation: 'addPassword' },
      verify: { service: 'azure', operation: 'token' },
    },
  },
  {
    script: 'aws-iam-access-key',
    minimum: [
      KSM_GET,
      // The same list also tells whether the admin's own key is among the user's (TARGET_IS_ADMIN): the admin guard
      // costs no request, where asking STS GetCallerIdentity who the admin is would cost one per run. A gateway
      // allow-list of IAM paths (KEEPER_ROTATE_ALLOW_AWS_USERS=/path/) adds one GetUser; the bench sets none.
      { service: 'iam', operation: 'ListAccessKeys', why: "list the user's keys (quota of two, which key is LAST, whether one is the admin's)" },
      { service: 'ksm', operation: 'update_secret', why: 'write check before deleting LAST: prove the record is what Keeper holds and keep other writers out while deleting', steadyOnly: true },
      { service: 'iam', operation: 'DeleteAccessKey', why: 'delete LAST, only once two keys exist', steadyOnly: true },
      { service: 'ksm', operation: 'rollback_secret_update', why: 'close the write check', steadyOnly: true },
      { service: 'ksm', operation: 'get_secret', why: 'read the record again: the rollback may have changed its revision', steadyOnly: true },
      { service: 'iam', operation: 'CreateAccessKey', why: 'create the new key' },
      KSM_SAVE,
      { service: 'sts', operation: 'GetCallerIdentity', why: 'verify: the new key signs a request, as the right user' },
      KSM_FINALIZE,
    ],
    sandboxOnly: [],
    propagation: {
      set: (sb, ms) => sb.aws.setPropagationDelay(ms),
      create: { service: 'iam', operation: 'CreateAccessKey' },
      verify: { service: 'sts', operation: 'GetCallerIdentity' },
    },
  },
  {
    script: 'wiz-service-account',
    minimum: [
      KSM_GET,
      { service: 'wiz-auth', operation: 'token', why: 'token with the current secret (the account rotates itself)' },
      // The account's name, for KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS, comes with this read: no request of its own.
      { service: 'wiz-api', operation: 'serviceAccounts', why: 'read the account: enabled, expiry, whether it is time, its name' },
      { service: 'ksm', operation: 'update_secret', why: 'write check: Wiz replaces in place, so prove Keeper takes the write before rotating' },
      { service: 'ksm', operation: 'rollback_secret_update', why: 'close the write check' },
      { service: 'wiz-api', operation: 'rotateServiceAccountSecret', why: 'replace the secret (the old one stops working)' },
      { service: 'ksm', operation: 'get_secret', why: 'read the record again: the rollback may have changed its revision (transaction model not documented)' },
      { service: 'ksm', operation: 'update_secret', why: 'save the new secret in a rotation transaction' },
      { service: 'wiz-auth', operation: 'token', why: 'verify: a token with the new secret' },
      KSM_FINALIZE,
      { service: 'wiz-api', operation: 'updateServiceAccount', why: "push the account's expiry out (with the new token)" },
    ],
    sandboxOnly: [],
    // Wiz replaces the secret in place and documents no propagation delay; the sandbox models none.
  },
  {
    script: 'aws-ecr-pull-secret',
    // The demo record holds its own IAM key and names one registry (its account's, in one region); each more
    // region adds a GetAuthorizationToken and each more registry a GET /v2/. Nothing to retire: logins expire.
    minimum: [
      KSM_GET,
      { service: 'ecr', operation: 'GetAuthorizationToken', why: 'a fresh registry login (12 hours) for the region, signed with the IAM key' },
      { service: 'ksm', operation: 'update_secret', why: 'save the login and its expiry in a rotation transaction, checked against the revision read' },
      { service: 'ecr-registry', operation: 'ApiVersionCheck', why: 'verify: GET /v2/ with the new login (the only proof the registry takes it)' },
      KSM_FINALIZE,
    ],
    sandboxOnly: [],
    // A login works the moment ECR issues it: no propagation delay to model.
  },
];

// ---------------------------------------------------------------------------------------------------------------
// Options

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    target: { type: 'string', multiple: true },
    delays: { type: 'string', default: '3000,30000,120000' },
    delay: { type: 'string' },
    'long-runs': { type: 'string', default: '1' },
    out: { type: 'string' },
    dist: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    'no-binary': { type: 'boolean', default: false },
    'no-delivery': { type: 'boolean', default: false },
    fleet: { type: 'string', default: '0' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log(`npm run bench -- [--runs N] [--target NAME ...] [--delays MS,MS,...] [--long-runs N] [--out FILE] [--dist DIR] [--no-build] [--no-binary]

  --runs N       pairs (node -e 0, script) per target, and rotations with a propagation delay (default 10, at least 3)
  --target NAME  only this script (repeatable); default: every script in dist/
  --delays LIST  simulated propagation delays D for new credentials, in ms (default 3000,30000,120000; 0 skips)
  --long-runs N  rotations per target for each D over 10 s (default 1: they take minutes); shorter D use --runs
  --out FILE     also write the JSON here (bench/<date>-<sha>.json and bench/latest.json are always written)
  --dist DIR     run the scripts (and DIR/keeper-rotate, if there) built in DIR instead (e.g. an older build to
                 compare with); implies --no-build
  --no-build     use dist/ as it is
  --no-binary    leave out the keeper-rotate executable (and do not build it)
  --no-delivery  leave out the delivery figures (an AWS rotation with a file and a Kubernetes Secret + restart)
  --fleet N      also discover, create, rotate and report on a large tenant of N credentials per target (e.g.
                 1000; default 0, left out: at 1000 it takes about 40 minutes, most of it IAM's pace, Keeper's
                 create budget and Wiz's pace for the rotations and report --check, all through one admin)`);
  process.exit(0);
}
const RUNS = Number(opts.runs);
const DELAYS_MS = (opts.delay ?? opts.delays).split(',').map((d) => Number(d.trim())).filter((d) => d !== 0);
const LONG_RUNS = Number(opts['long-runs']);
if (!Number.isInteger(RUNS) || RUNS < 3) throw new Error('--runs must be an integer of at least 3');
if (DELAYS_MS.some((d) => !Number.isFinite(d) || d < 0)) throw new Error('--delays must be numbers of milliseconds >= 0');
if (!Number.isInteger(LONG_RUNS) || LONG_RUNS < 1) throw new Error('--long-runs must be an integer of at least 1');
const FLEET = Number(opts.fleet);
if (!Number.isInteger(FLEET) || FLEET < 0 || FLEET > 20_000) throw new Error('--fleet must be an integer from 0 to 20000');
/** Delays up to this are sampled --runs times; longer ones --long-runs times. */
const LONG_DELAY_MS = 10_000;
const chosen = opts.target?.flatMap((t) => t.split(',')) ?? TARGETS.map((t) => t.script);
for (const t of chosen) if (!TARGETS.some((x) => x.script === t)) throw new Error(`unknown target ${t}; one of ${TARGETS.map((x) => x.script).join(', ')}`);
const targets = TARGETS.filter((t) => chosen.includes(t.script));
const DIST = resolve(opts.dist ?? 'dist');
const scriptPath = (t: BenchTarget) => join(DIST, `${t.script}.cjs`);
const HOST = hostPlatform();
const BINARY_NAME = process.platform === 'win32' ? 'keeper-rotate.exe' : 'keeper-rotate';
/** The executable is measured unless left out, or unless --dist names a folder that has none. */
const BINARY_WANTED = !opts['no-binary'] && HOST !== undefined;

// ---------------------------------------------------------------------------------------------------------------
// Build dist/ when it is missing or older than anything it is built from (as the demo does, but only if needed):
// the .cjs scripts by scripts/build.ts, the executable (this host's only) by scripts/build-binary.ts.

function ensureBuilt(): void {
  if (opts['no-build'] || opts.dist) return;
  const builds: Array<{ script: string; args: string[]; outputs: string[] }> = [{ script: 'scripts/build.ts', args: [], outputs: targets.map((t) => join('dist', `${t.script}.cjs`)) }];
  if (BINARY_WANTED) builds.push({ script: 'scripts/build-binary.ts', args: ['--platform', HOST!], outputs: [join('dist', BINARY_NAME)] });
  for (const b of builds) {
    if (!isStale(b.outputs, buildInputs(b.script))) continue;
    console.error(`bench: ${b.outputs.join(', ')} missing or stale; running ${b.script}`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', b.script, ...b.args], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes. Both the baseline and the script run with the same `--require` hook, which writes the
// process's peak resident set (getrusage ru_maxrss: the kernel's own high-water mark, so no short peak is missed
// as it would be by sampling /proc) and its CPU time to fd 3 as the process exits. Timing starts just before
// spawn() and uses performance.now(), the clock the in-process sandbox stamps requests with.

const work = mkdtempSync(join(tmpdir(), 'keeper-rotate-bench-'));
const HOOK = join(work, 'maxrss-hook.cjs');
writeFileSync(
  HOOK,
  `process.on('exit', () => { try { const r = process.resourceUsage(); require('node:fs').writeSync(3, r.maxRSS + ' ' + (r.userCPUTime + r.systemCPUTime) + '\\n'); } catch {} });\n`,
);

interface ChildRun {
  t0: number;
  tExit: number;
  code: number;
  /** Peak resident set, KiB (ru_maxrss). */
  rssKb: number;
  /** User + system CPU time of the whole process (all threads), ms. */
  cpuMs: number;
  output: string;
}

/** A process to measure: its file and arguments, and what it needs in its environment to load the hook. */
interface Program {
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

/** `node ARGS` on a node binary: the machine's (the default) or the executable's runtime. */
const onNode = (args: string[], node = process.execPath): Program => ({ file: node, args: ['--require', HOOK, ...args] });

/** The executable: it takes no node options on its command line (they are its own), but reads NODE_OPTIONS. */
const onBinary = (binary: string, args: string[]): Program => ({ file: binary, args, env: { NODE_OPTIONS: `--require ${JSON.stringify(HOOK)}` } });

function runChild(program: Program | string[], env: NodeJS.ProcessEnv, stdin: string, onSpawn?: (pid: number) => void): Promise<ChildRun> {
  const { file, args, env: extra } = Array.isArray(program) ? onNode(program) : program;
  return new Promise((done, fail) => {
    let output = '';
    let rss = '';
    let tExit = 0;
    let code = 0;
    const t0 = performance.now();
    const child: ChildProcess = spawn(file, args, { env: { ...env, ...extra }, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    if (child.pid !== undefined) onSpawn?.(child.pid);
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (rss += c.toString()));
    child.stdin!.end(stdin);
    child.on('error', fail);
    child.on('exit', (c, signal) => {
      tExit = performance.now();
      code = c ?? (signal ? 128 : 1);
    });
    child.on('close', () => {
      const [maxRss, cpuUs] = rss.trim().split(' ').map(Number);
      done({ t0, tExit, code, rssKb: maxRss || 0, cpuMs: (cpuUs || 0) / 1000, output });
    });
  });
}

/**
 * CPU time a running process has used so far, all threads, from the scheduler's nanosecond counters (Linux only;
 * NaN elsewhere). Unlike wall time it hardly moves when other work competes for the cores.
 */
function processCpuMs(pid: number): number {
  try {
    let ns = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    return ns / 1e6;
  } catch {
    return Number.NaN;
  }
}

function childEnv(sandbox: Sandbox): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...sandbox.env };
  // Whatever started the bench (tsx, npm) must not load anything into the measured processes.
  delete env.NODE_OPTIONS;
  return env;
}

// One certificate for every sandbox of the run; each sample gets a fresh sandbox (demo state), so every rotation
// does the same work.
const tls = generateTlsMaterial();
let sandboxCount = 0;
async function freshSandbox(): Promise<Sandbox> {
  const dir = join(work, `sandbox-${++sandboxCount}`);
  // The sandbox's budgets stay on; its default propagation and read lag (tens of ms, spread) are taken out so
  // every sample does the same work: the minimum request count, and, in the delay runs, exactly the D set.
  return startSandbox({ dir, tls, realism: { propagationMs: 0, readLagMs: 0, spread: 0 } });
}

function gatewayLine(script: string): string {
  const fixture = JSON.parse(readFileSync(join('fixtures', `${script}.json`), 'utf8')) as Record<string, unknown>;
  return encodeGatewayInput(fixture) + '\n';
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics

// stats() and quantile(): scripts/bench-stats.ts.

// ---------------------------------------------------------------------------------------------------------------
// Measurements

interface Sample {
  baselineMs: number;
  baselineRssKb: number;
  startupMs: number;
  rotationMs: number;
  rssKb: number;
  baselineCpuMs: number;
  cpuMs: number;
  /** CPU time (all threads) of the script when its first connection arrived. */
  startupCpuMs: number;
  exitCode: number;
  requests: number;
  /** New TCP (TLS) connections per service during the run. */
  connections: Record<string, number>;
}

interface DelaySample {
  /** From the moment the sandbox lets the new credential authenticate to the verify request it accepted. */
  waitPastDelayMs: number;
  /** Verify requests the sandbox refused before accepting one. */
  refusedVerifies: number;
  /** Every verify request of the run, the accepted one included. */
  verifyRequests: number;
  rotationMs: number;
  exitCode: number;
}

const key = (e: { service: string; operation: string }) => `${e.service}:${e.operation}`;

function runEntries(sandbox: Sandbox, t0: number): RequestLogEntry[] {
  return sandbox.log
    .entries()
    .filter((e) => e.t >= t0)
    .sort((a, b) => a.t - b.t);
}

function countBy<T>(items: T[], by: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[by(i)] = (out[by(i)] ?? 0) + 1;
  return out;
}

function fail(message: string, output: string): never {
  console.error(`bench: ${message}\n${output}`);
  process.exit(1);
}

/**
 * The floor every script stands on: a process that loads https and sends one request to the sandbox's KSM
 * server (DNS, TLS, the root certificates), and nothing else. Measured like a script, next to its own baseline.
 */
const REFERENCE = 'https GET';
const REFERENCE_ARGS = ['-e', "require('node:https').get(process.env.KEEPER_ROTATE_BENCH_URL + '/bench', (r) => { r.resume(); r.on('end', () => process.exit(0)); })"];

/**
 * One baseline (`node -e 0`, or the executable's runtime's `-e 0`), then one run of `program` (a script, the
 * reference, or the executable), on a fresh sandbox.
 */
async function pair(what: string, program: Program | string[], line: string, baseline: Program | string[] = ['-e', '0']): Promise<Sample> {
  const sandbox = await freshSandbox();
  try {
    const env = { ...childEnv(sandbox), KEEPER_ROTATE_BENCH_URL: sandbox.urls.ksm! };
    const base = await runChild(baseline, env, '');
    if (base.code !== 0) fail(`the baseline of ${what} failed`, base.output);
    // The script's CPU time as it opens its first connection: start-up in a measure that competing work barely moves.
    let pid: number | undefined;
    let startupCpuMs = Number.NaN;
    const connected = sandbox.log.connected.bind(sandbox.log);
    sandbox.log.connected = (service: string) => {
      if (pid !== undefined && Number.isNaN(startupCpuMs)) startupCpuMs = processCpuMs(pid);
      connected(service);
    };
    const run = await runChild(program, env, line, (p) => (pid = p));
    if (run.code !== 0) fail(`${what} exited ${run.code}`, run.output);
    const entries = runEntries(sandbox, run.t0);
    if (entries.length === 0) fail(`${what} made no request`, run.output);
    return {
      baselineMs: base.tExit - base.t0,
      baselineRssKb: base.rssKb,
      startupMs: entries[0]!.t - run.t0,
      startupCpuMs,
      rotationMs: run.tExit - run.t0,
      rssKb: run.rssKb,
      baselineCpuMs: base.cpuMs,
      cpuMs: run.cpuMs,
      exitCode: run.code,
      requests: entries.length,
      connections: countBy(
        sandbox.log.connections().filter((c) => c.t >= run.t0),
        (c) => c.service,
      ),
    };
  } finally {
    await sandbox.close();
  }
}

/** Consecutive rotations of the same record on one sandbox: the first from the demo state, then steady state. */
async function requestSequence(target: BenchTarget, line: string, rotations: number, program: Program | string[] = [scriptPath(target)]): Promise<string[][]> {
  const sandbox = await freshSandbox();
  try {
    const out: string[][] = [];
    for (let i = 0; i < rotations; i++) {
      // Rotations of one record are days apart, not back to back: each starts with Wiz's request budget (3 a
      // second) full again, or a quick machine throttles the next rotation's first call and counts it as extra.
      sandbox.wiz.rateLimits.reset();
      const run = await runChild(program, childEnv(sandbox), line);
      if (run.code !== 0) fail(`${target.script} exited ${run.code}`, run.output);
      out.push(runEntries(sandbox, run.t0).map((e) => `${key(e)}${e.status >= 400 ? `:${e.status}` : ''}`));
    }
    return out;
  } finally {
    await sandbox.close();
  }
}

async function delayed(target: BenchTarget, line: string, delayMs: number): Promise<DelaySample> {
  const p = target.propagation!;
  const sandbox = await freshSandbox();
  try {
    p.set(sandbox, delayMs);
    // Long delays outlast the targets' default verify timeouts (AWS: 120 s) and the run deadline: give both room,
    // as an admin expecting slow propagation would.
    const env = childEnv(sandbox);
    if (delayMs > LONG_DELAY_MS) {
      const uid = (JSON.parse(readFileSync(join('fixtures', `${target.script}.json`), 'utf8')) as { userRecordUid: string }).userRecordUid;
      const data = cloneData(sandbox.ksm.readRecord(uid)!.data);
      writeText(data, { label: 'verify_timeout_seconds', kind: 'text' }, String(Math.ceil((delayMs * 3) / 1000)));
      sandbox.ksm.editRecord(uid, data);
      env.KEEPER_ROTATE_DEADLINE_SECONDS = String(Math.ceil((delayMs * 3) / 1000) + 120);
    }
    const run = await runChild([scriptPath(target)], env, line);
    if (run.code !== 0) fail(`${target.script} exited ${run.code} with a ${delayMs} ms propagation delay`, run.output);
    const entries = runEntries(sandbox, run.t0);
    const created = entries.find((e) => key(e) === key(p.create) && e.status < 300);
    if (!created) fail(`${target.script}: no ${key(p.create)} in the request log`, run.output);
    const verifies = entries.filter((e) => key(e) === key(p.verify) && e.t > created.t);
    const accepted = verifies.find((e) => e.status < 300);
    if (!accepted) fail(`${target.script}: no accepted ${key(p.verify)} after ${key(p.create)}`, run.output);
    return {
      waitPastDelayMs: accepted.t - (created.t + delayMs),
      refusedVerifies: verifies.filter((e) => e.status >= 300 && e.t < accepted.t).length,
      verifyRequests: verifies.filter((e) => e.t <= accepted.t).length,
      rotationMs: run.tExit - run.t0,
      exitCode: run.code,
    };
  } finally {
    await sandbox.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The executable

/**
 * The executable and its own runtime (the pinned Node it embeds, which build:binary keeps), copied into the bench's
 * folder with `cp`, as install.sh puts the executable on a gateway. Measured where build:binary wrote it, a fresh
 * executable can sit in the page cache as 2 MiB folios (a file written in large pieces, on a kernel with large
 * folios), which the kernel maps whole into each process that runs it: peak RSS ~35 MB higher, for the same code.
 * A copied file reads back page by page, like one read from disk after a reboot.
 */
interface Executable {
  binary: string;
  runtime: string;
  bytes: number;
}

function installExecutable(): Executable | undefined {
  const built = join(DIST, BINARY_NAME);
  if (!BINARY_WANTED || !existsSync(built)) return undefined;
  const place = (from: string, name: string) => {
    const to = join(work, name);
    if (process.platform === 'win32') copyFileSync(from, to);
    else {
      const r = spawnSync('cp', [from, to], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`cp ${from} ${to} failed: ${r.stderr}`);
    }
    return to;
  };
  const runtime = runtimeBinary(HOST!, resolve('node_modules', '.cache', 'keeper-rotate-node'));
  return { binary: place(built, BINARY_NAME), runtime: place(runtime, `node-${NODE_VERSION}${process.platform === 'win32' ? '.exe' : ''}`), bytes: statSync(built).size };
}

/** The .cjs rotation a binary rotation is compared with: the same target, in the same round of runs. */
interface BinarySample extends Sample {
  cjsRotationMs: number;
  cjsCpuMs: number;
  cjsStartupMs: number;
  cjsStartupCpuMs: number;
  cjsRssKb: number;
}

interface VersionSample {
  /** The machine's `node -e 0`. */
  nodeMs: number;
  nodeCpuMs: number;
  nodeRssKb: number;
  /** `keeper-rotate --version`. */
  versionMs: number;
  versionCpuMs: number;
  versionRssKb: number;
  /** The executable's runtime, `-e 0`. */
  runtimeMs: number;
  runtimeCpuMs: number;
  runtimeRssKb: number;
}

/** The machine's `node -e 0`, `keeper-rotate --version` and its runtime's `-e 0`, back to back. */
async function versionSample(exe: Executable): Promise<VersionSample> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const node = await runChild(['-e', '0'], env, '');
  const version = await runChild(onBinary(exe.binary, ['--version']), env, '');
  const runtime = await runChild(onNode(['-e', '0'], exe.runtime), env, '');
  for (const [what, r] of [['node -e 0', node], ['keeper-rotate --version', version], ['the runtime -e 0', runtime]] as const) if (r.code !== 0) fail(`${what} exited ${r.code}`, r.output);
  return {
    nodeMs: node.tExit - node.t0,
    nodeCpuMs: node.cpuMs,
    nodeRssKb: node.rssKb,
    versionMs: version.tExit - version.t0,
    versionCpuMs: version.cpuMs,
    versionRssKb: version.rssKb,
    runtimeMs: runtime.tExit - runtime.t0,
    runtimeCpuMs: runtime.cpuMs,
    runtimeRssKb: runtime.rssKb,
  };
}

/** Measured requests against the minimum: what is above it, what is below it (a bug in the list or the script). */
function compare(measured: string[], minimum: MinimumRequest[], steady: boolean, sandboxOnly: SandboxOnly[]) {
  const need = countBy(
    minimum.filter((m) => steady || !m.steadyOnly),
    key,
  );
  const got = countBy(
    measured.map((m) => m.split(':').slice(0, 2).join(':')),
    (m) => m,
  );
  const extra: Record<string, number> = {};
  const missing: Record<string, number> = {};
  for (const k of new Set([...Object.keys(need), ...Object.keys(got)])) {
    const d = (got[k] ?? 0) - (need[k] ?? 0);
    if (d > 0) extra[k] = d;
    if (d < 0) missing[k] = -d;
  }
  const sandboxExtra = Object.fromEntries(Object.entries(extra).filter(([k]) => sandboxOnly.some((s) => key(s) === k)));
  const realExtra = Object.fromEntries(Object.entries(extra).filter(([k]) => !sandboxOnly.some((s) => key(s) === k)));
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  return {
    minimum: sum(need),
    measured: measured.length,
    /** Above the minimum against the real services (sandbox-only requests left out). */
    extra: realExtra,
    sandboxOnly: sandboxExtra,
    missing,
    realCount: measured.length - sum(sandboxExtra),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Main

ensureBuilt();
const startedAt = new Date();
const loadBefore = loadavg();
const bundles = Object.fromEntries(targets.map((t) => [t.script, statSync(scriptPath(t)).size]));
const lines = Object.fromEntries(targets.map((t) => [t.script, gatewayLine(t.script)]));
const exe = installExecutable();
if (BINARY_WANTED && !exe) console.error(`bench: no ${join(DIST, BINARY_NAME)}; measuring the .cjs scripts only`);
const cjsRun = (t: BenchTarget) => pair(t.script, [scriptPath(t)], lines[t.script]!);
const binaryRun = (t: BenchTarget, e: Executable) => pair(`keeper-rotate ${t.script}`, onBinary(e.binary, [t.script]), lines[t.script]!, onNode(['-e', '0'], e.runtime));

// Warm-up (discarded): file cache, the first TLS handshakes.
for (const t of targets) {
  await cjsRun(t);
  if (exe) await binaryRun(t, exe);
}
await pair(REFERENCE, REFERENCE_ARGS, '');
if (exe) await versionSample(exe);

const samples: Record<string, Sample[]> = Object.fromEntries(targets.map((t) => [t.script, []]));
const binarySamples: Record<string, BinarySample[]> = Object.fromEntries(targets.map((t) => [t.script, []]));
const reference: Sample[] = [];
const versionSamples: VersionSample[] = [];
for (let i = 1; i <= RUNS; i++) {
  for (const t of targets) {
    if (!exe) {
      samples[t.script]!.push(await cjsRun(t));
      continue;
    }
    // Which of the two goes first alternates, so neither always gets the cache (or the load) the other left.
    let cjs: Sample;
    let bin: Sample;
    if (i % 2) {
      cjs = await cjsRun(t);
      bin = await binaryRun(t, exe);
    } else {
      bin = await binaryRun(t, exe);
      cjs = await cjsRun(t);
    }
    samples[t.script]!.push(cjs);
    binarySamples[t.script]!.push({ ...bin, cjsRotationMs: cjs.rotationMs, cjsCpuMs: cjs.cpuMs, cjsStartupMs: cjs.startupMs, cjsStartupCpuMs: cjs.startupCpuMs, cjsRssKb: cjs.rssKb });
  }
  reference.push(await pair(REFERENCE, REFERENCE_ARGS, ''));
  if (exe) versionSamples.push(await versionSample(exe));
  process.stderr.write(`\rbench: run ${i}/${RUNS}`);
}
process.stderr.write('\n');

const sequences: Record<string, string[][]> = {};
const binarySequences: Record<string, string[][]> = {};
for (const t of targets) {
  sequences[t.script] = await requestSequence(t, lines[t.script]!, 3);
  if (exe) binarySequences[t.script] = await requestSequence(t, lines[t.script]!, 3, onBinary(exe.binary, [t.script]));
}

/** Per target, per delay D: the rotations with that propagation delay. */
const delaySamples: Record<string, Record<number, DelaySample[]>> = {};
for (const delayMs of DELAYS_MS) {
  const n = delayMs > LONG_DELAY_MS ? LONG_RUNS : RUNS;
  for (let i = 1; i <= n; i++) {
    for (const t of targets.filter((x) => x.propagation)) ((delaySamples[t.script] ??= {})[delayMs] ??= []).push(await delayed(t, lines[t.script]!, delayMs));
    process.stderr.write(`\rbench: propagation delay ${delayMs / 1000} s, run ${i}/${n}   `);
  }
  process.stderr.write('\n');
}

// Delivery: an AWS rotation that writes a file and patches a Kubernetes Secret (and restarts a Deployment), against
// the same rotation without destinations, in the same round (scripts/bench-delivery.ts).
const aws = targets.find((t) => t.script === 'aws-iam-access-key');
const deliverySamples: DeliverySample[] = [];
if (aws && !opts['no-delivery']) {
  const deliveryEnv = (sb: Sandbox) => childEnv(sb);
  await deliveryPair({ script: scriptPath(aws), line: lines[aws.script]!, sandbox: freshSandbox, env: deliveryEnv, run: runChild, work }, 0);
  for (let i = 1; i <= RUNS; i++) {
    deliverySamples.push(await deliveryPair({ script: scriptPath(aws), line: lines[aws.script]!, sandbox: freshSandbox, env: deliveryEnv, run: runChild, work }, i));
    process.stderr.write(`\rbench: delivery, run ${i}/${RUNS}   `);
  }
  process.stderr.write('\n');
}

// The fleet: discover, create, rotate and report at FLEET credentials per target (scripts/bench-fleet.ts).
let fleet: FleetFigures | undefined;
if (FLEET > 0) {
  // Its own process: in-process clients trust the sandbox only through NODE_EXTRA_CA_CERTS, read at start.
  const tlsDir = join(work, 'fleet-tls');
  mkdirSync(tlsDir);
  writeFileSync(join(tlsDir, 'cert.pem'), tls.certPem);
  writeFileSync(join(tlsDir, 'key.pem'), tls.keyPem, { mode: 0o600 });
  const out = join(work, 'fleet.json');
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(tlsDir, 'cert.pem'), [SANDBOX_TLS_DIR_ENV]: tlsDir, KEEPER_ROTATE_STATE_DIR: join(work, 'fleet-state'), NO_PROXY: SANDBOX_NO_PROXY, no_proxy: SANDBOX_NO_PROXY };
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench-fleet.ts', '--size', String(FLEET), '--out', out], { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.status !== 0) fail(`the fleet measurement exited ${r.status}`, '');
  fleet = JSON.parse(readFileSync(out, 'utf8')) as FleetFigures;
}

// ---------------------------------------------------------------------------------------------------------------
// Summary, table, JSON

const TARGET_STARTUP = 1.5;
const TARGET_RSS = 1.6;
/** Issue 15's targets: wait past D at most max(1 s, 10 % of D); at most 20 verify requests at D = 120 s. */
const targetWaitMs = (delayMs: number) => Math.max(1000, delayMs / 10);
const TARGET_VERIFY_REQUESTS = { delayMs: 120_000, max: 20 };
/** Issue 19's targets for the executable. */
const TARGET_BINARY = {
  /** `keeper-rotate --version` ÷ the machine's `node -e 0`, wall time. */
  versionRatio: 0.8,
  /** A rotation by the executable ÷ the same rotation by the .cjs on the machine's Node. */
  rotationCpuRatio: 0.6,
  rotationWallRatio: 0.8,
  /** Peak RSS of a rotation by the executable ÷ its own runtime's `-e 0`. */
  rssRatio: 1.6,
};
/** New connections to one sandbox service (one host) in a rotation: one, kept alive, where the protocol allows. */
const TARGET_CONNECTIONS_PER_HOST = 1;

/** The timing and memory figures of a set of pairs. */
function summarise(s: Sample[]) {
  return {
    startupRatio: stats(s.map((x) => x.startupMs / x.baselineMs)),
    rotationRatio: stats(s.map((x) => x.rotationMs / x.baselineMs)),
    rssRatio: stats(s.map((x) => x.rssKb / x.baselineRssKb)),
    cpuRatio: stats(s.map((x) => x.cpuMs / x.baselineCpuMs)),
    startupCpuRatio: stats(s.map((x) => x.startupCpuMs / x.baselineCpuMs)),
    startupCpuMs: stats(s.map((x) => x.startupCpuMs)),
    cpuMs: stats(s.map((x) => x.cpuMs)),
    baselineCpuMs: stats(s.map((x) => x.baselineCpuMs)),
    startupMs: stats(s.map((x) => x.startupMs)),
    rotationMs: stats(s.map((x) => x.rotationMs)),
    rssMb: stats(s.map((x) => x.rssKb / 1024)),
    baselineMs: stats(s.map((x) => x.baselineMs)),
    baselineRssMb: stats(s.map((x) => x.baselineRssKb / 1024)),
  };
}

/** New connections per service: how often each count was seen, and the most to one host in a run. */
function connectionFigures(s: Sample[]) {
  return {
    connections: countBy(
      s.flatMap((x) => Object.entries(x.connections).map(([k, n]) => `${k}=${n}`)),
      (k) => k,
    ),
    connectionsPerHost: stats(s.map((x) => Math.max(0, ...Object.values(x.connections)))),
  };
}

function requestFigures(t: BenchTarget, seq: string[][]) {
  return {
    minimum: t.minimum,
    sandboxOnly: t.sandboxOnly,
    first: { sequence: seq[0]!, ...compare(seq[0]!, t.minimum, false, t.sandboxOnly) },
    steady: { sequence: seq.at(-1)!, ...compare(seq.at(-1)!, t.minimum, true, t.sandboxOnly) },
    allRotations: seq.map((r) => r.length),
  };
}

/** A rotation by the executable against the .cjs's in the same round, and against its own runtime's `-e 0`. */
function summariseBinary(s: BinarySample[]) {
  return {
    rotationVsCjs: stats(s.map((x) => x.rotationMs / x.cjsRotationMs)),
    cpuVsCjs: stats(s.map((x) => x.cpuMs / x.cjsCpuMs)),
    startupVsCjs: stats(s.map((x) => x.startupMs / x.cjsStartupMs)),
    startupCpuVsCjs: stats(s.map((x) => x.startupCpuMs / x.cjsStartupCpuMs)),
    rssVsCjs: stats(s.map((x) => x.rssKb / x.cjsRssKb)),
    /** ÷ the runtime's `-e 0`. */
    rssRatio: stats(s.map((x) => x.rssKb / x.baselineRssKb)),
    rotationMs: stats(s.map((x) => x.rotationMs)),
    cpuMs: stats(s.map((x) => x.cpuMs)),
    startupMs: stats(s.map((x) => x.startupMs)),
    startupCpuMs: stats(s.map((x) => x.startupCpuMs)),
    rssMb: stats(s.map((x) => x.rssKb / 1024)),
    cjsRotationMs: stats(s.map((x) => x.cjsRotationMs)),
    cjsCpuMs: stats(s.map((x) => x.cjsCpuMs)),
    cjsStartupMs: stats(s.map((x) => x.cjsStartupMs)),
    cjsRssMb: stats(s.map((x) => x.cjsRssKb / 1024)),
    runtimeRssMb: stats(s.map((x) => x.baselineRssKb / 1024)),
    runtimeMs: stats(s.map((x) => x.baselineMs)),
  };
}

const versionSummary = versionSamples.length
  ? {
      wallRatio: stats(versionSamples.map((x) => x.versionMs / x.nodeMs)),
      cpuRatio: stats(versionSamples.map((x) => x.versionCpuMs / x.nodeCpuMs)),
      /** ÷ the runtime's `-e 0`. */
      rssRatio: stats(versionSamples.map((x) => x.versionRssKb / x.runtimeRssKb)),
      runtimeWallRatio: stats(versionSamples.map((x) => x.runtimeMs / x.nodeMs)),
      runtimeCpuRatio: stats(versionSamples.map((x) => x.runtimeCpuMs / x.nodeCpuMs)),
      versionMs: stats(versionSamples.map((x) => x.versionMs)),
      versionCpuMs: stats(versionSamples.map((x) => x.versionCpuMs)),
      versionRssMb: stats(versionSamples.map((x) => x.versionRssKb / 1024)),
      nodeMs: stats(versionSamples.map((x) => x.nodeMs)),
      nodeCpuMs: stats(versionSamples.map((x) => x.nodeCpuMs)),
      nodeRssMb: stats(versionSamples.map((x) => x.nodeRssKb / 1024)),
      runtimeMs: stats(versionSamples.map((x) => x.runtimeMs)),
      runtimeCpuMs: stats(versionSamples.map((x) => x.runtimeCpuMs)),
      runtimeRssMb: stats(versionSamples.map((x) => x.runtimeRssKb / 1024)),
    }
  : undefined;

const results = targets.map((t) => {
  const s = samples[t.script]!;
  const seq = sequences[t.script]!;
  const d = delaySamples[t.script];
  const b = binarySamples[t.script]!;
  return {
    script: t.script,
    bundleBytes: bundles[t.script]!,
    ...summarise(s),
    ...connectionFigures(s),
    requests: requestFigures(t, seq),
    propagation: d
      ? Object.entries(d).map(([delayMs, x]) => ({
          delayMs: Number(delayMs),
          waitPastDelayMs: stats(x.map((y) => y.waitPastDelayMs)),
          verifyRequests: stats(x.map((y) => y.verifyRequests)),
          refusedVerifies: stats(x.map((y) => y.refusedVerifies)),
          rotationMs: stats(x.map((y) => y.rotationMs)),
          samples: x,
        }))
      : undefined,
    samples: s,
    binary: exe && b.length ? { ...summariseBinary(b), ...connectionFigures(b), requests: requestFigures(t, binarySequences[t.script]!), samples: b } : undefined,
  };
});

const fmtStat = (st: Stats, digits: number, unit = '') => `${st.median.toFixed(digits)}${unit} [${st.p25.toFixed(digits)}–${st.p75.toFixed(digits)}]`;
const verdict = (ok: boolean) => (ok ? 'ok' : 'MISS');
const rows: string[][] = [['target', 'measure', 'median [p25–p75]', 'min–max', 'absolute median', 'target', '']];
const ref = summarise(reference);
rows.push([`(${REFERENCE})`, 'start-up ÷ node -e 0', fmtStat(ref.startupRatio, 2, 'x'), `${ref.startupRatio.min.toFixed(2)}–${ref.startupRatio.max.toFixed(2)}`, `${ref.startupMs.median.toFixed(0)} ms vs ${ref.baselineMs.median.toFixed(0)} ms`, 'floor', '']);
if (!Number.isNaN(ref.startupCpuRatio.median)) rows.push(['', 'start-up CPU ÷ node -e 0', fmtStat(ref.startupCpuRatio, 2, 'x'), `${ref.startupCpuRatio.min.toFixed(2)}–${ref.startupCpuRatio.max.toFixed(2)}`, `${ref.startupCpuMs.median.toFixed(0)} ms vs ${ref.baselineCpuMs.median.toFixed(0)} ms`, 'floor', '']);
rows.push(['', 'peak RSS ÷ node -e 0', fmtStat(ref.rssRatio, 2, 'x'), `${ref.rssRatio.min.toFixed(2)}–${ref.rssRatio.max.toFixed(2)}`, `${ref.rssMb.median.toFixed(1)} MB vs ${ref.baselineRssMb.median.toFixed(1)} MB`, 'floor', '']);
/** A ratio row: the median with its spread, the absolute figures, and the verdict when there is a target. */
const ratioRow = (name: string, measure: string, st: Stats, absolute: string, target?: { max: number; text?: string }): string[] => [
  name,
  measure,
  fmtStat(st, 2, 'x'),
  `${st.min.toFixed(2)}–${st.max.toFixed(2)}`,
  absolute,
  target ? (target.text ?? `≤ ${target.max}x`) : '-',
  target ? verdict(st.median <= target.max) : '',
];
const ms = (st: Stats) => `${st.median.toFixed(0)} ms`;
const mb = (st: Stats) => `${st.median.toFixed(1)} MB`;
const runtimeName = `node ${NODE_VERSION} -e 0`;
if (versionSummary) {
  const v = versionSummary;
  rows.push(ratioRow('(keeper-rotate --version)', 'wall ÷ node -e 0', v.wallRatio, `${ms(v.versionMs)} vs ${ms(v.nodeMs)}`, { max: TARGET_BINARY.versionRatio }));
  rows.push(ratioRow('', 'CPU time ÷ node -e 0', v.cpuRatio, `${ms(v.versionCpuMs)} vs ${ms(v.nodeCpuMs)}`));
  rows.push(ratioRow('', `peak RSS ÷ ${runtimeName}`, v.rssRatio, `${mb(v.versionRssMb)} vs ${mb(v.runtimeRssMb)}`));
  rows.push(ratioRow(`(${runtimeName})`, 'wall ÷ node -e 0', v.runtimeWallRatio, `${ms(v.runtimeMs)} vs ${ms(v.nodeMs)}`, { max: Number.POSITIVE_INFINITY, text: 'floor' }).map((c, i) => (i === 6 ? '' : c)));
  rows.push(ratioRow('', 'peak RSS ÷ node -e 0', stats(versionSamples.map((x) => x.runtimeRssKb / x.nodeRssKb)), `${mb(v.runtimeRssMb)} vs ${mb(v.nodeRssMb)}`, { max: Number.POSITIVE_INFINITY, text: 'floor' }).map((c, i) => (i === 6 ? '' : c)));
}
const connectionsRow = (name: string, st: Stats): string[] => [name, 'connections, most to one host', fmtStat(st, 0), `${st.min}–${st.max}`, '', `≤ ${TARGET_CONNECTIONS_PER_HOST}`, verdict(st.median <= TARGET_CONNECTIONS_PER_HOST)];
for (const r of results) {
  rows.push([r.script, 'start-up ÷ node -e 0', fmtStat(r.startupRatio, 2, 'x'), `${r.startupRatio.min.toFixed(2)}–${r.startupRatio.max.toFixed(2)}`, `${r.startupMs.median.toFixed(0)} ms vs ${r.baselineMs.median.toFixed(0)} ms`, `≤ ${TARGET_STARTUP}x`, verdict(r.startupRatio.median <= TARGET_STARTUP)]);
  rows.push(['', 'rotation ÷ node -e 0', fmtStat(r.rotationRatio, 2, 'x'), `${r.rotationRatio.min.toFixed(2)}–${r.rotationRatio.max.toFixed(2)}`, `${r.rotationMs.median.toFixed(0)} ms`, '-', '']);
  if (!Number.isNaN(r.startupCpuRatio.median)) rows.push(['', 'start-up CPU ÷ node -e 0', fmtStat(r.startupCpuRatio, 2, 'x'), `${r.startupCpuRatio.min.toFixed(2)}–${r.startupCpuRatio.max.toFixed(2)}`, `${r.startupCpuMs.median.toFixed(0)} ms vs ${r.baselineCpuMs.median.toFixed(0)} ms`, '-', '']);
  rows.push(['', 'CPU time ÷ node -e 0', fmtStat(r.cpuRatio, 2, 'x'), `${r.cpuRatio.min.toFixed(2)}–${r.cpuRatio.max.toFixed(2)}`, `${r.cpuMs.median.toFixed(0)} ms vs ${r.baselineCpuMs.median.toFixed(0)} ms`, '-', '']);
  rows.push(['', 'peak RSS ÷ node -e 0', fmtStat(r.rssRatio, 2, 'x'), `${r.rssRatio.min.toFixed(2)}–${r.rssRatio.max.toFixed(2)}`, `${r.rssMb.median.toFixed(1)} MB vs ${r.baselineRssMb.median.toFixed(1)} MB`, `≤ ${TARGET_RSS}x`, verdict(r.rssRatio.median <= TARGET_RSS)]);
  const q = r.requests;
  const reqText = (c: typeof q.first) => `${c.realCount}${c.measured !== c.realCount ? ` (+${c.measured - c.realCount} sandbox-only)` : ''} / min ${c.minimum}`;
  rows.push(['', 'requests, 1st rotation', reqText(q.first), '', '', '= min', verdict(Object.keys(q.first.extra).length === 0 && Object.keys(q.first.missing).length === 0)]);
  rows.push(['', 'requests, steady state', reqText(q.steady), '', '', '= min', verdict(Object.keys(q.steady.extra).length === 0 && Object.keys(q.steady.missing).length === 0)]);
  rows.push(connectionsRow('', r.connectionsPerHost));
  if (r.propagation) {
    for (const p of r.propagation) {
      const d = p.delayMs / 1000;
      const sec = (st: Stats) => ({ ...st, median: st.median / 1000, p25: st.p25 / 1000, p75: st.p75 / 1000 });
      rows.push(['', `wait past D=${d} s`, fmtStat(sec(p.waitPastDelayMs), 2, ' s'), `${(p.waitPastDelayMs.min / 1000).toFixed(2)}–${(p.waitPastDelayMs.max / 1000).toFixed(2)} s`, `${p.samples.length} run(s)`, `≤ ${(targetWaitMs(p.delayMs) / 1000).toFixed(0)} s`, verdict(p.waitPastDelayMs.median <= targetWaitMs(p.delayMs))]);
      const capped = p.delayMs === TARGET_VERIFY_REQUESTS.delayMs;
      rows.push(['', `verify requests D=${d} s`, fmtStat(p.verifyRequests, 0), `${p.verifyRequests.min}–${p.verifyRequests.max}`, `${p.refusedVerifies.median} refused`, capped ? `≤ ${TARGET_VERIFY_REQUESTS.max}` : '-', capped ? verdict(p.verifyRequests.max <= TARGET_VERIFY_REQUESTS.max) : '']);
    }
  } else {
    rows.push(['', 'wait past D', 'n/a', '', DELAYS_MS.length ? 'no propagation delay modelled' : 'skipped (--delays 0)', '', '']);
  }
  const b = r.binary;
  if (b) {
    const name = `keeper-rotate ${r.script}`;
    rows.push(ratioRow(name, 'rotation wall ÷ .cjs', b.rotationVsCjs, `${ms(b.rotationMs)} vs ${ms(b.cjsRotationMs)}`, { max: TARGET_BINARY.rotationWallRatio }));
    rows.push(ratioRow('', 'rotation CPU ÷ .cjs', b.cpuVsCjs, `${ms(b.cpuMs)} vs ${ms(b.cjsCpuMs)}`, { max: TARGET_BINARY.rotationCpuRatio }));
    rows.push(ratioRow('', 'start-up ÷ .cjs', b.startupVsCjs, `${ms(b.startupMs)} vs ${ms(b.cjsStartupMs)}`));
    if (!Number.isNaN(b.startupCpuVsCjs.median)) rows.push(ratioRow('', 'start-up CPU ÷ .cjs', b.startupCpuVsCjs, `${ms(b.startupCpuMs)} vs ${ms(stats(binarySamples[r.script]!.map((x) => x.cjsStartupCpuMs)))}`));
    rows.push(ratioRow('', `peak RSS ÷ ${runtimeName}`, b.rssRatio, `${mb(b.rssMb)} vs ${mb(b.runtimeRssMb)}`, { max: TARGET_BINARY.rssRatio }));
    rows.push(ratioRow('', 'peak RSS ÷ .cjs', b.rssVsCjs, `${mb(b.rssMb)} vs ${mb(b.cjsRssMb)}`));
    const bq = b.requests;
    const reqText = (c: typeof bq.first) => `${c.realCount}${c.measured !== c.realCount ? ` (+${c.measured - c.realCount} sandbox-only)` : ''} / min ${c.minimum}`;
    rows.push(['', 'requests, 1st rotation', reqText(bq.first), '', '', '= min', verdict(Object.keys(bq.first.extra).length === 0 && Object.keys(bq.first.missing).length === 0)]);
    rows.push(['', 'requests, steady state', reqText(bq.steady), '', '', '= min', verdict(Object.keys(bq.steady.extra).length === 0 && Object.keys(bq.steady.missing).length === 0)]);
    rows.push(connectionsRow('', b.connectionsPerHost));
  }
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(
  `\nkeeper-rotate bench: ${RUNS} runs per target, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, load average ${loadBefore[0]!.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`,
);
for (const [i, r] of rows.entries()) {
  console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
for (const r of results) {
  const kinds: Array<[string, Pick<typeof r, 'requests' | 'connections'>]> = [[r.script, r]];
  if (r.binary) kinds.push([`keeper-rotate ${r.script}`, r.binary]);
  for (const [name, figures] of kinds) {
    for (const [label, c] of [['1st rotation', figures.requests.first], ['steady state', figures.requests.steady]] as const) {
      const notes = [
        ...Object.entries(c.extra).map(([k, n]) => `EXTRA ${n} × ${k}`),
        ...Object.entries(c.missing).map(([k, n]) => `below the minimum: ${n} × ${k} missing (check the list)`),
        ...Object.entries(c.sandboxOnly).map(([k, n]) => `${n} × ${k} (sandbox only)`),
      ];
      console.log(`${name} ${label}: ${c.sequence.join(' ')}${notes.length ? `\n  ${notes.join('; ')}` : ''}`);
    }
    console.log(`${name} connections per run: ${Object.entries(figures.connections).map(([k, n]) => `${k} (${n} runs)`).join(', ')}`);
  }
}

const delivery = deliverySamples.length ? deliveryFigures(deliverySamples) : undefined;
if (delivery) {
  console.log(
    `\ndelivery (aws-iam-access-key with a file and a Kubernetes Secret + restart, against the same rotation without; steady state; ${deliverySamples.length} rounds):\n` +
      `  rotation wall ÷ without: ${fmtStat(delivery.wallRatio, 2, 'x')} (${ms(delivery.withMs)} vs ${ms(delivery.withoutMs)}), ` +
      `CPU ÷ without: ${fmtStat(delivery.cpuRatio, 2, 'x')} (${ms(delivery.withCpuMs)} vs ${ms(delivery.withoutCpuMs)}), ` +
      `peak RSS ÷ without: ${fmtStat(delivery.rssRatio, 2, 'x')}\n` +
      `  extra requests: ${Object.entries(delivery.extraRequests).map(([k, n]) => `${n} × ${k}`).join(', ') || 'none'}${delivery.sequencesDiffer ? ' (MISS: not the same in every round)' : ''}; ` +
      `from finalize to the restart (the file written between): ${fmtStat(delivery.deliveryMs, 0, ' ms')}\n` +
      `  the first rotation after destinations are added (it delivers the record's credential first): extra ${Object.entries(delivery.extraRequestsFirst).map(([k, n]) => `${n} × ${k}`).join(', ')}\n` +
      `  with: ${delivery.sequence.with.join(' ')}` +
      (delivery.allDelivered ? '' : '\n  MISS: a delivered rotation did not leave the new key in the Secret and the file'),
  );
}
if (fleet) for (const line of fleetRows(fleet)) console.log(line);

const sha = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || 'nogit';
const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout.trim() !== '';
const report = {
  schema: 2,
  date: startedAt.toISOString(),
  git: { sha, dirty },
  machine: {
    node: process.version,
    platform: platform(),
    release: release(),
    arch: arch(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim(),
    totalMemMb: Math.round(totalmem() / 2 ** 20),
    loadavgBefore: loadBefore,
    loadavgAfter: loadavg(),
  },
  options: { runs: RUNS, longRuns: LONG_RUNS, delaysMs: DELAYS_MS, targets: targets.map((t) => t.script), dist: relative(process.cwd(), DIST) || '.', delivery: !opts['no-delivery'], fleet: FLEET },
  targets: { startupRatio: TARGET_STARTUP, rssRatio: TARGET_RSS, waitPastDelayMs: 'max(1000, D / 10)', verifyRequests: TARGET_VERIFY_REQUESTS, requests: 'minimum', connectionsPerHost: TARGET_CONNECTIONS_PER_HOST, binary: TARGET_BINARY },
  results,
  binary: exe
    ? {
        file: relative(process.cwd(), join(DIST, BINARY_NAME)),
        bytes: exe.bytes,
        runtime: `node ${NODE_VERSION}`,
        measured: 'a cp copy of the file (as install.sh installs it), beside a cp copy of its runtime',
        version: { ...versionSummary, samples: versionSamples },
      }
    : undefined,
  reference: { what: 'node -e "https.get(sandbox KSM URL)": one HTTPS request and nothing else', ...ref, samples: reference },
  delivery: delivery ? { ...delivery, samples: deliverySamples } : undefined,
  fleet,
};
mkdirSync('bench', { recursive: true });
const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
const file = join('bench', `${stamp}-${sha}${dirty ? '-dirty' : ''}.json`);
const json = JSON.stringify(report, null, 2) + '\n';
writeFileSync(file, json);
writeFileSync(join('bench', 'latest.json'), json);
if (opts.out) writeFileSync(opts.out, json);
console.log(`\nwrote ${file} and bench/latest.json${opts.out ? ` and ${opts.out}` : ''}`);
rmSync(work, { recursive: true, force: true });
