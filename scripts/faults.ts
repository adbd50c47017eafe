// `npm run faults [-- --target NAME] [--kind KIND] [--model pending|immediate] [--replies] [--jobs N] [--bundle DIR]`: the fault matrix
// (test/reliability/fault-matrix.ts) over the built scripts: every call of each target's rotation × every fault
// kind, plus a kill after each call. Prints one table per target and ends with
// `faults: N cases, N held, M lost`; exits 1 when M is not 0.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TRANSACTION_MODELS, type TransactionModel } from '../src/sandbox/ksm/index.js';
import { SANDBOX_TLS_DIR_ENV, generateTlsMaterial } from '../src/sandbox/tls.js';
import { type AnyKind, CASE_KINDS, REPLY_KINDS, type CaseResult, ORACLE_NAMES, buildScripts, callName, casesFor, formatTables, scenariosFor, pool, runCase, summaryLine } from '../test/reliability/fault-matrix.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string', multiple: true },
    kind: { type: 'string', multiple: true },
    model: { type: 'string', multiple: true },
    replies: { type: 'boolean', default: false },
    jobs: { type: 'string', default: '2' },
    bundle: { type: 'string' },
  },
});
const targets = values.target ?? ORACLE_NAMES;
// --replies: the reply corpus (bad replies) instead of the transport faults.
const known: readonly AnyKind[] = values.replies ? REPLY_KINDS : CASE_KINDS;
const kinds = (values.kind ?? [...known]) as AnyKind[];
for (const t of targets) if (!ORACLE_NAMES.includes(t)) throw new Error(`unknown target ${t}; one of ${ORACLE_NAMES.join(', ')}`);
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
    for (const { scenario, calls } of await scenariosFor(built.dir, target)) {
      const cases = casesFor(target, scenario, calls, kinds, models);
      process.stderr.write(`${target} (${scenario} rotation): ${calls.length} calls, ${cases.length} cases `);
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
