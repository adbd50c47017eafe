// The bench's delivery figures (scripts/bench.ts): what a rotation with destinations costs against the same
// rotation without. Each round rotates the demo's AWS record twice on a fresh sandbox as it is, and twice on
// another with the record set to write an env file and patch the Kubernetes Secret demo/app-creds, restarting the
// Deployment demo/app (as test/pipeline/deliver.test.ts does); which goes first alternates from round to round.
// The second rotation of each is the one timed (steady state: the destinations already hold the record's
// credential). The first one's requests are kept too: with destinations just added, a run first delivers the
// credential the record holds (under a write check), then rotates and delivers the new one.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALLOW_FILE_DIRS } from '../src/destinations/file.js';
import { ALLOW_K8S_RESTARTS, ALLOW_K8S_SECRETS } from '../src/destinations/kubernetes-secret.js';
import { cloneData, readText, writeText } from '../src/keeper/record.js';
import { DEMO } from '../src/sandbox/demo-vault.js';
import type { RequestLogEntry } from '../src/sandbox/faults.js';
import type { Sandbox } from '../src/sandbox/sandbox.js';
import { stats } from './bench-stats.js';

interface ChildRun {
  t0: number;
  tExit: number;
  code: number;
  rssKb: number;
  cpuMs: number;
  output: string;
}

export interface DeliveryContext {
  script: string;
  line: string;
  sandbox(): Promise<Sandbox>;
  env(sandbox: Sandbox): NodeJS.ProcessEnv;
  run(program: string[], env: NodeJS.ProcessEnv, stdin: string): Promise<ChildRun>;
  work: string;
}

export interface DeliverySample {
  withoutMs: number;
  withMs: number;
  withoutCpuMs: number;
  withCpuMs: number;
  withoutRssKb: number;
  withRssKb: number;
  /** From the finalize request to the last Kubernetes request (the restart): delivery's own span. */
  deliveryMs: number;
  without: string[];
  with: string[];
  /** The first rotation's requests (destinations just added). */
  firstWithout: string[];
  firstWith: string[];
  /** The Secret and the file hold the key the record holds after the run. */
  delivered: boolean;
}

const key = (e: RequestLogEntry) => `${e.service}:${e.operation}${e.status >= 400 ? `:${e.status}` : ''}`;
const since = (sb: Sandbox, t0: number) => sb.log.entries().filter((e) => e.t >= t0).sort((a, b) => a.t - b.t);

async function plain(ctx: DeliveryContext) {
  const sb = await ctx.sandbox();
  try {
    const first = await ctx.run([ctx.script], ctx.env(sb), ctx.line);
    if (first.code !== 0) throw new Error(`the rotation without destinations exited ${first.code}\n${first.output}`);
    const firstEntries = since(sb, first.t0);
    const run = await ctx.run([ctx.script], ctx.env(sb), ctx.line);
    if (run.code !== 0) throw new Error(`the rotation without destinations exited ${run.code}\n${run.output}`);
    return { run, entries: since(sb, run.t0), firstEntries };
  } finally {
    await sb.close();
  }
}

async function delivered(ctx: DeliveryContext, round: number) {
  const sb = await ctx.sandbox();
  try {
    const uid = DEMO.aws.userRecordUid;
    const out = join(ctx.work, `delivery-${round}`);
    mkdirSync(out, { recursive: true });
    const file = join(out, 'aws.env');
    const data = cloneData(sb.ksm.readRecord(uid)!.data);
    for (const [label, value] of Object.entries({ file_destinations: file, k8s_secret: 'demo/app-creds', k8s_restart: 'app' })) writeText(data, { label, kind: 'text' }, value);
    sb.ksm.editRecord(uid, data);
    const env = { ...ctx.env(sb), [ALLOW_FILE_DIRS]: out, [ALLOW_K8S_SECRETS]: 'demo/*', [ALLOW_K8S_RESTARTS]: 'demo/app' };
    const first = await ctx.run([ctx.script], env, ctx.line);
    if (first.code !== 0) throw new Error(`the rotation with destinations exited ${first.code}\n${first.output}`);
    const firstEntries = since(sb, first.t0);
    const run = await ctx.run([ctx.script], env, ctx.line);
    if (run.code !== 0) throw new Error(`the rotation with destinations exited ${run.code}\n${run.output}`);
    const entries = since(sb, run.t0);
    const keyId = readText(sb.ksm.readRecord(uid)!.data, 'aws_access_key_id');
    const secret = sb.kubernetes.cluster.secretText('demo', 'app-creds');
    const ok = !!keyId && secret?.access_key_id === keyId && readFileSync(file, 'utf8').includes(`AWS_ACCESS_KEY_ID=${keyId}`);
    const finalize = entries.find((e) => e.service === 'ksm' && e.operation === 'finalize_secret_update');
    const lastK8s = entries.filter((e) => e.service === 'kubernetes').at(-1);
    return { run, entries, firstEntries, ok, deliveryMs: finalize && lastK8s ? lastK8s.t - finalize.t : Number.NaN };
  } finally {
    await sb.close();
  }
}

export async function deliveryPair(ctx: DeliveryContext, round: number): Promise<DeliverySample> {
  let a: Awaited<ReturnType<typeof plain>>;
  let b: Awaited<ReturnType<typeof delivered>>;
  if (round % 2) {
    a = await plain(ctx);
    b = await delivered(ctx, round);
  } else {
    b = await delivered(ctx, round);
    a = await plain(ctx);
  }
  return {
    withoutMs: a.run.tExit - a.run.t0,
    withMs: b.run.tExit - b.run.t0,
    withoutCpuMs: a.run.cpuMs,
    withCpuMs: b.run.cpuMs,
    withoutRssKb: a.run.rssKb,
    withRssKb: b.run.rssKb,
    deliveryMs: b.deliveryMs,
    without: a.entries.map(key),
    with: b.entries.map(key),
    firstWithout: a.firstEntries.map(key),
    firstWith: b.firstEntries.map(key),
    delivered: b.ok,
  };
}

function countBy(items: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[i] = (out[i] ?? 0) + 1;
  return out;
}

export function deliveryFigures(samples: DeliverySample[]) {
  // Extra requests: the delivered rotation's against the plain one's, per service and operation (the same in every
  // round when both are at the minimum; the first round's are shown, and `sequencesDiffer` says if any round differs).
  const extra = (x: DeliverySample, first = false) => {
    const a = countBy(first ? x.firstWithout : x.without);
    const b = countBy(first ? x.firstWith : x.with);
    return Object.fromEntries(Object.entries(b).flatMap(([k, n]) => (n > (a[k] ?? 0) ? [[k, n - (a[k] ?? 0)]] : [])));
  };
  const first = JSON.stringify(extra(samples[0]!));
  return {
    wallRatio: stats(samples.map((x) => x.withMs / x.withoutMs)),
    cpuRatio: stats(samples.map((x) => x.withCpuMs / x.withoutCpuMs)),
    rssRatio: stats(samples.map((x) => x.withRssKb / x.withoutRssKb)),
    withMs: stats(samples.map((x) => x.withMs)),
    withoutMs: stats(samples.map((x) => x.withoutMs)),
    withCpuMs: stats(samples.map((x) => x.withCpuMs)),
    withoutCpuMs: stats(samples.map((x) => x.withoutCpuMs)),
    deliveryMs: stats(samples.map((x) => x.deliveryMs)),
    extraRequests: extra(samples[0]!) as Record<string, number>,
    extraRequestsFirst: extra(samples[0]!, true) as Record<string, number>,
    sequencesDiffer: samples.some((x) => JSON.stringify(extra(x)) !== first),
    sequence: { without: samples[0]!.without, with: samples[0]!.with, firstWithout: samples[0]!.firstWithout, firstWith: samples[0]!.firstWith },
    allDelivered: samples.every((x) => x.delivered),
  };
}
