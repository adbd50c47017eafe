// The fault matrix under `npm test`: the same cases `npm run faults` prints (test/reliability/fault-matrix.ts),
// one test each, so a case that loses a working credential fails CI with the reasons the matrix found. The
// `allow-list` scenario adds only the calls the allow-lists make (ALLOW_LIST_CALLS), each × every fault.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ALLOW_LIST_CALLS, CASE_KINDS, ORACLE_NAMES, buildScripts, callName, casesFor, runCase, scenariosFor, summaryLine, type CaseResult } from './fault-matrix.js';

const built = buildScripts();
after(() => built.cleanup());
const results: CaseResult[] = [];

const plans = await Promise.all(ORACLE_NAMES.map(async (target) => ({ target, scenarios: await scenariosFor(built.dir, target) })));

for (const { target, scenarios } of plans) {
  for (const { scenario, calls, walk, kinds } of scenarios) {
    describe(`${target}, ${scenario} rotation: ${scenario === 'allow-list' ? 'every call the allow-lists add × every fault' : scenario === 'delivery' ? `every Keeper write × ${(kinds ?? CASE_KINDS).join(', ')}` : 'every call × every fault'}`, { concurrency: 2 }, () => {
      test('the rotation makes the calls the matrix walks', () => {
        // A rotation that stops early would shrink the matrix without anyone noticing.
        // ECR's rotation is the shortest: read, one login, save, the registry's check, finalize.
        const least = target === 'aws-ecr-pull-secret' ? 5 : 6;
        assert.ok(calls.length >= least, `only ${calls.length} calls: ${calls.map(callName).join(', ')}`);
        assert.ok(calls.some((c) => c.service === 'ksm' && c.operation === 'finalize_secret_update'), 'the rotation never finalized');
        // An allow-list that stopped reaching the script (or stopped costing its request) would leave its calls unfaulted.
        if (scenario === 'allow-list') assert.deepEqual(walk.map(callName), ALLOW_LIST_CALLS[target], `the calls the allow-lists add, of ${calls.map(callName).join(', ')}`);
      });
      for (const c of casesFor(target, scenario, calls, kinds ?? CASE_KINDS, undefined, walk)) {
        test(`${c.call.index}. ${callName(c.call)} · ${c.kind} · ${c.model}`, { timeout: 240_000 }, async () => {
          const r = await runCase(built.dir, c);
          results.push(r);
          assert.notEqual(r.verdict, 'unfired', `the harness never fired the fault (twice): ${r.problems.join('; ')}`);
          assert.deepEqual(r.problems, [], `exit ${r.exit}${r.error ? ` ${r.error}` : ''}, then the clean run exited ${r.cleanExit}`);
          assert.notEqual(r.verdict, 'lost');
        });
      }
    });
  }
}

test('summary: no case lost a working credential', () => {
  const expected = plans.reduce((n, p) => n + p.scenarios.reduce((m, s) => m + casesFor(p.target, s.scenario, s.calls, s.kinds ?? CASE_KINDS, undefined, s.walk).length, 0), 0);
  assert.equal(results.length, expected, 'some cases did not run');
  assert.match(summaryLine(results), new RegExp(`^faults: ${expected} cases, ${expected} held, 0 lost$`));
});
