// `npm run chaos [-- --histories N] [--seed S] [--target NAME] [--model pending|immediate] [--destinations yes|no]
// [--jobs N] [--steps N] [--bundle DIR]`: seeded random histories against the built scripts (test/reliability/chaos.ts), each on a fresh
// sandbox. Prints every history that broke an invariant in full, with the command that replays it, and ends with
// `chaos: N histories, M runs, K violations`; exits 1 unless K is 0. `--seed S` alone replays the one history S.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SANDBOX_TLS_DIR_ENV, generateTlsMaterial } from '../src/sandbox/tls.js';
import type { TransactionModel } from '../src/sandbox/ksm/index.js';
import { CHAOS_TARGETS, DEFAULT_STEPS, MODELS, type HistoryResult, formatHistory, historyLine, planHistory, runHistory, summaryLine } from '../test/reliability/chaos.js';
import { buildScripts, pool } from '../test/reliability/fault-matrix.js';

const { values } = parseArgs({
  options: {
    histories: { type: 'string' },
    seed: { type: 'string' },
    target: { type: 'string' },
    model: { type: 'string' },
    destinations: { type: 'string' },
    jobs: { type: 'string', default: '2' },
    steps: { type: 'string', default: String(DEFAULT_STEPS) },
    bundle: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    calls: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`npm run chaos -- [--histories N] [--seed S] [--target NAME] [--model pending|immediate] [--destinations yes|no] [--jobs N] [--steps N] [--bundle DIR] [--verbose] [--calls]
  --histories N  how many histories (default 20; 1 when --seed is given alone, to replay it)
  --seed S       the first seed; histories use S, S+1, ... (default: a random one, printed)
  --target NAME  only this target: ${CHAOS_TARGETS.join(', ')} (default: the seed picks)
  --model M      Keeper's transaction model: ${MODELS.join(', ')} (default: the seed picks)
  --destinations yes: the record delivers to a file, a Kubernetes Secret or both; no: to none (default: the seed picks)
  --jobs N       histories run side by side (default 2)
  --steps N      steps per history before the final clean runs (default ${DEFAULT_STEPS})
  --bundle DIR   use the scripts built in DIR instead of building them
  --verbose      print every history, not only the ones that broke an invariant
  --calls        with each run, the requests the sandbox saw from it`);
  process.exit(0);
}

const integer = (name: string, value: string | undefined, min: number): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, not ${value}`);
  return n;
};
const firstSeed = integer('seed', values.seed, 0) ?? Math.floor(Math.random() * 1_000_000);
const histories = integer('histories', values.histories, 1) ?? (values.seed !== undefined ? 1 : 20);
const jobs = integer('jobs', values.jobs, 1)!;
const steps = integer('steps', values.steps, 0)!;
if (values.target !== undefined && !CHAOS_TARGETS.includes(values.target)) throw new Error(`unknown target ${values.target}; one of ${CHAOS_TARGETS.join(', ')}`);
if (values.model !== undefined && !(MODELS as readonly string[]).includes(values.model)) throw new Error(`unknown model ${values.model}; one of ${MODELS.join(', ')}`);
if (values.destinations !== undefined && !['yes', 'no'].includes(values.destinations)) throw new Error(`--destinations must be yes or no, not ${values.destinations}`);
const plans = Array.from({ length: histories }, (_, i) =>
  planHistory(firstSeed + i, {
    steps,
    ...(values.target !== undefined ? { target: values.target } : {}),
    ...(values.model !== undefined ? { model: values.model as TransactionModel } : {}),
    ...(values.destinations !== undefined ? { destinations: values.destinations === 'yes' } : {}),
  }),
);

// The sandboxes share one certificate, which the scripts trust through the sandbox's NODE_EXTRA_CA_CERTS.
const tlsDir = mkdtempSync(join(tmpdir(), 'keeper-rotate-chaos-tls-'));
const material = generateTlsMaterial();
writeFileSync(join(tlsDir, 'cert.pem'), material.certPem);
writeFileSync(join(tlsDir, 'key.pem'), material.keyPem, { mode: 0o600 });
process.env[SANDBOX_TLS_DIR_ENV] = tlsDir;
const built = buildScripts(values.bundle);
console.log(`chaos: seeds ${firstSeed}..${firstSeed + histories - 1}, ${steps} steps each, ${jobs} at a time`);
let results: HistoryResult[] = [];
try {
  results = await pool(plans, jobs, (plan) => runHistory(plan, { bundle: built.dir }), (r) => {
    process.stderr.write(`${r.violations.length > 0 ? 'VIOLATED' : 'held    '} ${historyLine(r)}\n`);
    if (values.verbose || r.violations.length > 0 || r.warnings.length > 0) console.log(`\n${formatHistory(r, { calls: values.calls })}`);
  });
} finally {
  built.cleanup();
  rmSync(tlsDir, { recursive: true, force: true });
}
const excused = results.reduce((n, r) => n + r.excused.length, 0);
const warnings = results.reduce((n, r) => n + r.warnings.length, 0);
const violated = results.filter((r) => r.violations.length > 0);
if (violated.length > 0) console.log(`\nhistories with violations: ${violated.map((r) => `${r.plan.seed} (${r.plan.target}, ${r.plan.model})`).join(', ')}`);
if (warnings > 0) console.log(`warnings (not violations): ${warnings}, in ${results.filter((r) => r.warnings.length > 0).map((r) => r.plan.seed).join(', ')}`);
if (excused > 0) console.log(`states accepted only because a run exited 5 (or was killed with a sealed secret), or a person broke the record's credential: ${excused}`);
console.log(summaryLine(results));
process.exit(violated.length > 0 ? 1 : 0);
