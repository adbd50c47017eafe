// `npx tsx scripts/bench-floor.ts [--runs 10] [--target NAME ...]`: the floor under issue 19's targets for the
// keeper-rotate executable. For each target, in rounds on fresh sandboxes (demo state, as `npm run bench`): the
// executable's runtime's `-e 0`, the runtime doing only the HTTPS requests of the target's first rotation (one
// kept-alive connection per service, small JSON bodies, nothing else), the executable's rotation, and the .cjs
// rotation on the machine's Node. Each process gets bench.ts's `--require` hook (peak RSS and CPU time at exit).
// Prints medians: what the requests alone cost against the .cjs's CPU and the runtime's `-e 0` memory, and what
// the executable costs above them. Needs dist/ built (`npm run build`, `npm run build:binary`).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { startSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { generateTlsMaterial } from '../src/sandbox/tls.js';
import { hostPlatform, runtimeBinary } from './node-runtime.js';

/** The requests of each target's first rotation from the demo state, per sandbox service (bench.ts lists them). */
const PLANS: Record<string, Array<[service: string, count: number]>> = {
  'azure-app-secret': [['ksm', 3], ['azure', 6]],
  'aws-iam-access-key': [['ksm', 3], ['iam', 2], ['sts', 1]],
  'wiz-service-account': [['ksm', 6], ['wiz-auth', 2], ['wiz-api', 3]],
};

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, target: { type: 'string', multiple: true } } });
const runs = Number(values.runs);
const targets = values.target ?? Object.keys(PLANS);
const work = mkdtempSync(join(tmpdir(), 'keeper-rotate-floor-'));
const HOOK = join(work, 'hook.cjs');
writeFileSync(HOOK, `process.on('exit', () => { try { const r = process.resourceUsage(); require('node:fs').writeSync(3, r.maxRSS + ' ' + (r.userCPUTime + r.systemCPUTime) + '\\n'); } catch {} });\n`);
const FLOOR = join(work, 'floor.cjs');
writeFileSync(
  FLOOR,
  `'use strict';
const https = require('node:https');
const plan = JSON.parse(process.env.FLOOR_PLAN);
const body = JSON.stringify({ payload: 'x'.repeat(200) });
(async () => {
  const agents = {};
  for (const url of plan) {
    const agent = (agents[new URL(url).host] ??= new https.Agent({ keepAlive: true }));
    await new Promise((done, fail) => {
      const req = https.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (r) => { r.resume(); r.on('end', done); });
      req.on('error', fail);
      req.end(body);
    });
  }
  process.exit(0);
})().catch((err) => { console.error(err.message); process.exit(1); });
`,
);
// cp'd copies, as the bench runs them (a file just written can be mapped as 2 MiB folios; DEVELOPMENT.md).
const runtime = join(work, 'node');
copyFileSync(runtimeBinary(hostPlatform()!, resolve('node_modules', '.cache', 'keeper-rotate-node')), runtime);
const binary = join(work, 'keeper-rotate');
copyFileSync(resolve('dist', 'keeper-rotate'), binary);
const tls = generateTlsMaterial();

interface Run {
  cpuMs: number;
  rssMb: number;
}

function measure(file: string, args: string[], env: NodeJS.ProcessEnv, stdin: string, viaOptions: boolean): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(file, viaOptions ? args : ['--require', HOOK, ...args], {
      env: viaOptions ? { ...env, NODE_OPTIONS: `--require ${JSON.stringify(HOOK)}` } : env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let usage = '';
    child.stdout!.on('data', (c: Buffer) => (output += c));
    child.stderr!.on('data', (c: Buffer) => (output += c));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (usage += c));
    child.on('error', fail);
    child.stdin!.end(stdin);
    child.on('close', (code) => {
      if (code !== 0) return fail(new Error(`${file} ${args.join(' ')} exited ${code}: ${output.slice(-2000)}`));
      const [rssKb, cpuUs] = usage.trim().split(' ').map(Number);
      done({ cpuMs: cpuUs! / 1000, rssMb: rssKb! / 1024 });
    });
  });
}

async function onSandbox<T>(fn: (sandbox: Sandbox, env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> {
  const sandbox = await startSandbox({ dir: mkdtempSync(join(work, 'sandbox-')), tls, realism: { propagationMs: 0, readLagMs: 0, spread: 0 } });
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ...sandbox.env };
    delete env.NODE_OPTIONS;
    return await fn(sandbox, env);
  } finally {
    await sandbox.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

try {
  console.log(`bench-floor: ${runs} rounds per target, load average ${loadavg()[0]!.toFixed(1)}`);
  for (const target of targets) {
    const line = encodeGatewayInput(JSON.parse(readFileSync(join('fixtures', `${target}.json`), 'utf8')) as Record<string, unknown>) + '\n';
    const rows: Record<'e0' | 'floor' | 'binary' | 'cjs', Run[]> = { e0: [], floor: [], binary: [], cjs: [] };
    for (let round = -1; round < runs; round++) {
      const r = {
        e0: await measure(runtime, ['-e', '0'], { ...process.env, NODE_OPTIONS: '' }, '', false),
        floor: await onSandbox((sb, env) => {
          const plan = PLANS[target]!.flatMap(([service, count]) => Array<string>(count).fill(`${sb.urls[service]!}/`));
          return measure(runtime, [FLOOR], { ...env, FLOOR_PLAN: JSON.stringify(plan) }, '', false);
        }),
        binary: await onSandbox((_, env) => measure(binary, [target], env, line, true)),
        cjs: await onSandbox((_, env) => measure(process.execPath, [resolve('dist', `${target}.cjs`)], env, line, false)),
      };
      // The first round warms the file cache and is not counted.
      if (round >= 0) for (const k of Object.keys(rows) as Array<keyof typeof rows>) rows[k].push(r[k]);
    }
    const cpu = (k: keyof typeof rows) => median(rows[k].map((x) => x.cpuMs));
    const rss = (k: keyof typeof rows) => median(rows[k].map((x) => x.rssMb));
    console.log(
      `${target}: CPU floor ${cpu('floor').toFixed(0)} ms, executable ${cpu('binary').toFixed(0)} ms, .cjs ${cpu('cjs').toFixed(0)} ms: ` +
        `floor ÷ .cjs ${(cpu('floor') / cpu('cjs')).toFixed(2)}x, executable ÷ .cjs ${(cpu('binary') / cpu('cjs')).toFixed(2)}x; ` +
        `peak RSS -e 0 ${rss('e0').toFixed(1)} MB, floor ${rss('floor').toFixed(1)} MB (${(rss('floor') / rss('e0')).toFixed(2)}x), executable ${rss('binary').toFixed(1)} MB (${(rss('binary') / rss('e0')).toFixed(2)}x)`,
    );
  }
  console.log(`load average after: ${loadavg()[0]!.toFixed(1)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
