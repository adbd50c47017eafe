// `npm run faults [-- --target NAME] [--scenario first|steady|allow-list] [--kind KIND] [--model pending|immediate] [--replies] [--jobs N] [--bundle DIR]`:
// the fault matrix (test/reliability/fault-matrix.ts) over the built scripts: every call of each target's rotation
// × every fault kind, plus a kill after each call (the allow-list scenario: only the calls the allow-lists add).
// Prints one table per target and scenario and ends with `faults: N cases, N held, M lost`; exits 1 when M is not 0.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TRANSACTION_MODELS, type TransactionModel } from '../src/sandbox/ksm/index.js';
import { SANDBOX_TLS_DIR_ENV, generateTlsMaterial } from '../src/sandbox/tls.js';
import {
  type AnyKind,
  CASE_KINDS,
  REPLY_KINDS,
  SCENARIOS,
  type CaseResult,
  ORACLE_NAMES,
  type Scenario,
  buildScripts,
  callName,
  casesFor,
  formatTables,
  scenariosFor,
  pool,
  runCase,
  summaryLine,
} from '../test/reliability/fault-matrix.js';

const HELP = `usage: npm run faults [-- options]

  --target NAME      ${ORACLE_NAMES.join(', ')} (repeatable; default all)
  --scenario NAME    ${SCENARIOS.join(', ')} (repeatable; default all; steady runs only where its calls differ
                     from the first rotation's; allow-list walks only the calls the allow-lists add)
  --kind KIND        ${CASE_KINDS.join(', ')} (repeatable; default all)
                     with --replies: ${REPLY_KINDS.join(', ')}
  --model MODEL      Keeper transaction model: pending, immediate (repeatable; default both)
  --replies          the reply corpus (bad replies) instead of the transport faults
  --jobs N           cases run at once (default 2)
  --bundle DIR       use the built scripts in DIR instead of building them
  --help             this text

Prints one table per target and scenario, then \`faults: N cases, N held, M lost\`; exits 1 when a case was lost or never fired.`;

const { values } = parseArgs({
  options: {
    target: { type: 'string', multiple: true },
    scenario: { type: 'string', multiple: true },
    kind: { type: 'string', multiple: true },
    model: { type: 'string', multiple: true },
    replies: { type: 'boolean', default: false },
    jobs: { type: 'string', default: '2' },
    bundle: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const targets = values.target ?? ORACLE_NAMES;
// --replies: the reply corpus (bad replies) instead of the transport faults.
const known: readonly AnyKind[] = values.replies ? REPLY_KINDS : CASE_KINDS;
const kinds = (values.kind ?? [...known]) as AnyKind[];
for (const t of targets) if (!ORACLE_NAMES.includes(t)) throw new Error(`unknown target ${t}; one of ${ORACLE_NAMES.join(', ')}`);
const scenarios = (values.scenario ?? [...SCENARIOS]) as Scenario[];
for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}`);
for (const k of kinds) if (!known.includes(k)) throw new Error(`unknown kind ${k}; one of ${known.join(', ')}`);
const models = (values.model ?? [...TRANSACTION_MODELS]) as TransactionModel[];
for (const m of models) if (!TRANSACTION_MODELS.includes(m)) throw new Error(`unknown model ${m}; one of ${TRANSACTION_MODELS.join(', ')}`);

// The sandboxes share one certificate, which the scripts trust through the sandbox's NODE_EXTRA_CA_CERTS.
const tlsDir = mkdtempSync(join(tmpdir(), 'keeper-rotate-faults-tls-'));
const material = generateTlsMaterial();
writeFileSync(join(tlsDir, 'cert.pem'), material.certPem);
writeFileSync(join(tlsDir, 'key.pem'), material.keyPem, { mode: 0o600 });
process.env[SANDBOX_TLS_DIR_ENV] = tlsDir;
const built = buildScripts(values.bundle);
const results: CaseResult[] = [];
try {
  for (const target of targets) {
    for (const { scenario, calls, walk, kinds: only } of await scenariosFor(built.dir, target, scenarios)) {
      const cases = casesFor(target, scenario, calls, only ? kinds.filter((k) => (only as readonly string[]).includes(k)) : kinds, models, walk);
      process.stderr.write(`${target} (${scenario} rotation): ${calls.length} calls${walk.length < calls.length ? ` (${walk.length} walked: ${walk.map(callName).join(', ') || 'none'})` : ''}, ${cases.length} cases `);
      results.push(...(await pool(cases, Number(values.jobs), (c) => runCase(built.dir, c), (r) => process.stderr.write(r.verdict === 'lost' ? 'x' : r.verdict === 'unfired' ? '?' : '.'))));
      process.stderr.write('\n');
    }
  }
} finally {
  built.cleanup();
  rmSync(tlsDir, { recursive: true, force: true });
}
console.log(formatTables(results));
const lost = results.filter((r) => r.verdict === 'lost' || r.verdict === 'unfired');
if (lost.length > 0) {
  console.log('\nlost, or never fired (twice):');
  for (const r of lost) console.log(`  ${r.verdict === 'unfired' ? '[never fired] ' : ''}${r.target} · ${r.model} · ${r.call.index}. ${callName(r.call)} · ${r.kind} (exit ${r.exit}${r.error ? ` ${r.error}` : ''}): ${r.problems.join('; ')}`);
}
console.log('\ncells: exit code of the faulted run (K = killed) and the verdict after the next clean run; "sealed": the new secret waited, sealed, on the gateway and the clean run stored it.');
console.log(summaryLine(results));
process.exit(lost.length > 0 ? 1 : 0);
