// The bench's fleet figures (scripts/bench.ts, `--fleet N`): issue 18's scale on the sandbox's large tenant, N
// IAM users, N Entra applications and N Wiz service accounts. The bench runs this file as a child process of its
// own (`--size N --out FILE`), started with the sandbox's certificate in NODE_EXTRA_CA_CERTS, which Node reads only
// at start. Everything then runs in that process (discover and report as `runDiscover` and `runReport`, every
// rotation through the scripts' own entry, test/helpers/rotate-in-process.ts), on one sandbox with its budgets on
// unless said otherwise (and, as in the bench's other sandboxes, no propagation delay or read lag):
//   1. `discover T --dry-run` per target: the discovery alone, wall time and requests per service and operation.
//   2. `discover T --create-in FOLDER` per target. Wiz's with Keeper's create budget on (100 at once, then only
//      after 10 s of silence): the time Keeper's budget sets for N creates. AWS's and Azure's with it off (they
//      list again first; only their creates differ).
//   3. A second `discover T --create-in` per target: nothing created.
//   4. Every created record rotated once, one after another, with every budget off and Entra's loop protection
//      lifted: rotations of a fleet run on the gateway's schedule, not back to back as here, so the services'
//      budgets would measure the loop, not the scripts. AWS users with two keys get previous_aws_access_key_id
//      first, as discover's warning asks. Wiz's requests are still paced per account in the process (wiz-api.ts
//      WIZ_API_PACE): the Wiz records all rotate through one admin, so their rotations run at Wiz's pace.
//   5. `report --format json`, and `report --check --concurrency 16` with the budgets on again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { runDiscover } from '../src/discover/main.js';
import { cloneData, readText, writeText } from '../src/keeper/record.js';
import { runReport } from '../src/report/command.js';
import { DEMO } from '../src/sandbox/demo-vault.js';
import { seedLargeTenant } from '../src/sandbox/large-tenant.js';
import { type Sandbox, startSandbox } from '../src/sandbox/sandbox.js';
import { sandboxTlsMaterial } from '../src/sandbox/tls.js';
import { gatewayParams, rotateInProcess } from '../test/helpers/rotate-in-process.js';
import { type Stats, stats } from './bench-stats.js';

export interface FleetOptions {
  size: number;
  dir: string;
  log: (line: string) => void;
}

export interface CommandFigures {
  command: string;
  exitCode: number;
  wallMs: number;
  /** Requests the sandbox logged during the command, by `service:operation` (`:STATUS` added when not 2xx). */
  requests: Record<string, number>;
  /** Throttled replies among them (a service's budget refused the request; it was sent again). */
  throttled: number;
  created?: number;
  /** discover's own summary line. */
  summary?: string;
}

export interface RotationFigures {
  target: string;
  records: number;
  exitCodes: Record<string, number>;
  wallMs: Stats;
  requests: Stats;
  totalMs: number;
}

export interface FleetFigures {
  size: number;
  discoverDryRun: CommandFigures[];
  discoverCreate: CommandFigures[];
  discoverAgain: CommandFigures[];
  rotations: RotationFigures[];
  report: CommandFigures;
  reportCheck: CommandFigures;
  /** Records the report listed, and of them how many carry an expiry (Azure, Wiz) or a CreateDate (AWS). */
  reportRows: { records: number; withTarget: number; withExpiryOrCreated: number };
}

const TARGET = { aws: 'aws-iam-access-key', azure: 'azure-app-secret', wiz: 'wiz-service-account' } as const;

function counted(sb: Sandbox, from: number): { requests: Record<string, number>; throttled: number } {
  const requests: Record<string, number> = {};
  let throttled = 0;
  for (const e of sb.log.entries().slice(from)) {
    const k = `${e.service}:${e.operation}${e.status >= 300 ? `:${e.status}` : ''}`;
    requests[k] = (requests[k] ?? 0) + 1;
    if (e.status === 429 || e.throttled) throttled += 1;
  }
  return { requests, throttled };
}

async function discover(sb: Sandbox, args: string[]): Promise<CommandFigures & { uids: string[] }> {
  let stderr = '';
  const from = sb.log.entries().length;
  const t0 = performance.now();
  const r = await runDiscover([...args, '--concurrency', '4'], { env: { ...process.env, ...sb.env }, stdout: { write: () => true }, stderr: { write: (c: string) => (stderr += c) } });
  const wallMs = performance.now() - t0;
  const summary = stderr.split('\n').find((l) => /^discover [a-z-]+: \d+ to bring/.test(l));
  if (r.exitCode !== 0) throw new Error(`discover ${args.join(' ')} exited ${r.exitCode}\n${stderr.slice(-2000)}`);
  return { command: `discover ${args.map((a) => (/^[A-Za-z0-9_-]{22}$/.test(a) ? 'UID' : a)).join(' ')}`, exitCode: r.exitCode, wallMs, ...counted(sb, from), created: r.created.length, ...(summary ? { summary } : {}), uids: r.created };
}

async function report(sb: Sandbox, argv: string[]): Promise<CommandFigures & { stdout: string }> {
  const out: string[] = [];
  const from = sb.log.entries().length;
  const t0 = performance.now();
  const code = await runReport({ argv, stdout: { write: (c: string) => (out.push(c), true) }, stderr: { write: () => true }, env: { ...process.env, ...sb.env }, platform: process.platform });
  return { command: `report ${argv.join(' ')}`, exitCode: code, wallMs: performance.now() - t0, ...counted(sb, from), stdout: out.join('') };
}

function setBudgets(sb: Sandbox, on: boolean): void {
  for (const b of Object.values(sb.budgets)) b.enabled = on;
  sb.ksm.setBudget({ enabled: on });
  sb.wiz.rateLimits.set({ api: on ? { burst: 3, perSecond: 3 } : null });
  // Entra's loop protection (20 identical token requests a minute) counts each rotation's admin token.
  sb.azure.setLoopLimit(on ? 20 : 1_000_000);
}

export async function measureFleet(o: FleetOptions): Promise<FleetFigures> {
  // As the bench's other sandboxes: budgets on, no propagation delay or read lag, so a rotation does the minimum.
  const sb = await startSandbox({ dir: o.dir, tls: sandboxTlsMaterial(), realism: { propagationMs: 0, readLagMs: 0, spread: 0 } });
  try {
    const fleet = seedLargeTenant(sb, { awsUsers: o.size, azureApps: o.size, wizAccounts: o.size });
    const args = {
      aws: ['aws', '--config', fleet.pamConfigurations.aws!, '--path-prefix', fleet.path],
      azure: ['azure', '--config', fleet.pamConfigurations.azure],
      wiz: ['wiz', '--config', fleet.pamConfigurations.wiz!],
    };
    const strip = ({ uids: _u, ...rest }: CommandFigures & { uids: string[] }): CommandFigures => rest;

    const discoverDryRun: CommandFigures[] = [];
    for (const t of ['aws', 'azure', 'wiz'] as const) {
      o.log(`discover ${t} --dry-run`);
      discoverDryRun.push(strip(await discover(sb, [...args[t], '--dry-run'])));
    }

    const discoverCreate: CommandFigures[] = [];
    const created: Record<keyof typeof TARGET, string[]> = { aws: [], azure: [], wiz: [] };
    for (const t of ['wiz', 'aws', 'azure'] as const) {
      sb.ksm.setBudget({ enabled: t === 'wiz' });
      sb.ksm.resetBudget();
      if (t !== 'wiz') sb.ksm.setBudget({ enabled: false });
      o.log(`discover ${t} --create-in (Keeper's budget ${t === 'wiz' ? 'on' : 'off'})`);
      const r = await discover(sb, [...args[t], '--create-in', fleet.folderUid]);
      created[t] = r.uids;
      discoverCreate.push({ ...strip(r), command: `${r.command} (Keeper's create budget ${t === 'wiz' ? 'on' : 'off'})` });
    }
    sb.ksm.setBudget({ enabled: true });
    sb.ksm.resetBudget();
    const discoverAgain: CommandFigures[] = [];
    for (const t of ['aws', 'azure', 'wiz'] as const) {
      o.log(`discover ${t} --create-in, again`);
      discoverAgain.push(strip(await discover(sb, [...args[t], '--create-in', fleet.folderUid])));
    }

    setBudgets(sb, false);
    const rotations: RotationFigures[] = [];
    const env = { ...process.env, ...sb.env };
    for (const t of ['aws', 'azure', 'wiz'] as const) {
      const config = t === 'aws' ? fleet.pamConfigurations.aws! : t === 'azure' ? fleet.pamConfigurations.azure : fleet.pamConfigurations.wiz!;
      const exitCodes: Record<string, number> = {};
      const walls: number[] = [];
      const requests: number[] = [];
      o.log(`rotating ${created[t].length} ${TARGET[t]} records`);
      const start = performance.now();
      for (const uid of created[t]) {
        let record = sb.ksm.readRecord(uid)!;
        const login = readText(record.data, 'login') ?? '';
        if (t === 'aws' && sb.aws.listKeys(login).length === 2) {
          const keys = [...sb.aws.listKeys(login)].sort((a, b) => (a.status === b.status ? Date.parse(String(a.createDate)) - Date.parse(String(b.createDate)) : a.status === 'Inactive' ? -1 : 1));
          const data = cloneData(record.data);
          writeText(data, { label: 'previous_aws_access_key_id', kind: 'text' }, keys[0]!.accessKeyId);
          sb.ksm.editRecord(uid, data);
          record = sb.ksm.readRecord(uid)!;
        }
        const from = sb.log.entries().length;
        const t0 = performance.now();
        const run = await rotateInProcess(TARGET[t], gatewayParams(config, uid, record.data.title, login), env);
        walls.push(performance.now() - t0);
        requests.push(sb.log.entries().length - from);
        exitCodes[run.code] = (exitCodes[run.code] ?? 0) + 1;
      }
      rotations.push({ target: TARGET[t], records: created[t].length, exitCodes, wallMs: stats(walls, 1), requests: stats(requests, 1), totalMs: performance.now() - start });
    }
    setBudgets(sb, true);

    o.log('report --format json');
    const r = await report(sb, ['--format', 'json']);
    const rows = (JSON.parse(r.stdout) as { records: Array<{ recordUid: string; target: string | null; expires: string | null; created: string | null }> }).records;
    const ours = new Set([...created.aws, ...created.azure, ...created.wiz]);
    const fleetRows = rows.filter((x) => ours.has(x.recordUid));
    o.log('report --check --concurrency 16');
    const c = await report(sb, ['--format', 'csv', '--check', '--concurrency', '16']);
    const drop = ({ stdout: _s, ...rest }: CommandFigures & { stdout: string }): CommandFigures => rest;
    return {
      size: o.size,
      discoverDryRun,
      discoverCreate,
      discoverAgain,
      rotations,
      report: drop(r),
      reportCheck: drop(c),
      reportRows: { records: fleetRows.length, withTarget: fleetRows.filter((x) => x.target).length, withExpiryOrCreated: fleetRows.filter((x) => x.expires || x.created).length },
    };
  } finally {
    await sb.close();
    rmSync(o.dir, { recursive: true, force: true });
  }
}

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const requestList = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, n]) => `${n} × ${k}`)
    .join(', ');

/** The fleet's lines for the bench's printout; MISS where a figure breaks what issue 18 asks. */
export function fleetRows(f: FleetFigures): string[] {
  const out = [`\nfleet: ${f.size} credentials per target on the large tenant (in the bench's process)`];
  const expected = { 'aws-iam-access-key': f.size, 'azure-app-secret': f.size, 'wiz-service-account': f.size };
  for (const c of f.discoverDryRun) out.push(`  ${c.command}: ${sec(c.wallMs)}; ${requestList(c.requests)}${c.throttled ? `; MISS: ${c.throttled} throttled` : ''}`);
  for (const c of f.discoverCreate) {
    const short = c.created !== f.size ? `; MISS: ${c.created} created, not ${f.size}` : '';
    out.push(`  ${c.command}: ${sec(c.wallMs)}, ${c.created} created; ${c.throttled} throttled; ${requestList(c.requests)}${short}`);
  }
  for (const c of f.discoverAgain) out.push(`  ${c.command} (again): ${sec(c.wallMs)}, ${c.created} created${c.created ? ' MISS' : ''}; ${requestList(c.requests)}`);
  for (const r of f.rotations) {
    const failed = r.records - (r.exitCodes['0'] ?? 0);
    out.push(
      `  rotate ${r.records} ${r.target} records, one after another: ${sec(r.totalMs)}; each ${r.wallMs.median.toFixed(0)} ms [${r.wallMs.p25.toFixed(0)}–${r.wallMs.p75.toFixed(0)}], ` +
        `${r.requests.median} requests [${r.requests.min}–${r.requests.max}]; exit codes ${JSON.stringify(r.exitCodes)}${failed || r.records !== expected[r.target as keyof typeof expected] ? ' MISS' : ''}`,
    );
  }
  out.push(`  ${f.report.command}: ${sec(f.report.wallMs)}; ${requestList(f.report.requests)}; ${f.reportRows.records} fleet records listed, ${f.reportRows.withTarget} with a target, ${f.reportRows.withExpiryOrCreated} with an expiry or CreateDate${f.reportRows.records !== 3 * f.size || f.reportRows.withExpiryOrCreated !== 3 * f.size ? ' MISS' : ''}`);
  out.push(`  ${f.reportCheck.command}: ${sec(f.reportCheck.wallMs)}, exit ${f.reportCheck.exitCode}; ${requestList(f.reportCheck.requests)}`);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.dirname, 'bench-fleet.ts')) {
  const { values } = parseArgs({ options: { size: { type: 'string', default: '1000' }, out: { type: 'string' } } });
  const dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-bench-fleet-'));
  const figures = await measureFleet({ size: Number(values.size), dir, log: (line) => process.stderr.write(`bench: fleet: ${line}\n`) });
  const json = JSON.stringify(figures, null, 2) + '\n';
  if (values.out) writeFileSync(values.out, json);
  else process.stdout.write(json);
}
