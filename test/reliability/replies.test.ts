// The reply corpus under `npm test` (test/reliability/fault-matrix.ts REPLY_KINDS): every bad reply a service or
// something in the middle can send, on the first call of each distinct service operation of each target's
// rotations (the allow-list scenario's own calls included), judged like the fault matrix (the record's
// credential works, the exit code tells the truth, nothing left behind, no secret) and more: never exit 1, an
// error line that names the service, no raw control character in the output, and a size cap on every reply.
// `npm run faults -- --replies` runs the corpus on every call under both transaction models.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ORACLE_NAMES, REPLY_KINDS, buildScripts, callName, casesFor, distinctOperations, runCase, scenariosFor, type CallRef } from './fault-matrix.js';

const built = buildScripts();
after(() => built.cleanup());

const plans = await Promise.all(
  ORACLE_NAMES.map(async (target) => {
    const seen = new Set<string>();
    const scenarios = (await scenariosFor(built.dir, target)).map(({ scenario, calls, walk }) => {
      // Operations an earlier scenario already covered are not run again (the steady and allow-list rotations
      // repeat most of the first one's).
      const fresh = distinctOperations(walk).filter((c: CallRef) => !seen.has(`${c.service} ${c.operation}`));
      for (const c of fresh) seen.add(`${c.service} ${c.operation}`);
      return { scenario, calls, walk: fresh };
    });
    return { target, scenarios };
  }),
);

for (const { target, scenarios } of plans) {
  for (const { scenario, calls, walk } of scenarios) {
    const cases = casesFor(target, scenario, calls, REPLY_KINDS, ['pending'], walk);
    if (cases.length === 0) continue;
    describe(`${target}, ${scenario} rotation: each operation × each bad reply`, { concurrency: 2 }, () => {
      for (const c of cases) {
        test(`${c.call.index}. ${callName(c.call)} · ${c.kind}`, { timeout: 240_000 }, async () => {
          const r = await runCase(built.dir, c);
          assert.notEqual(r.verdict, 'unfired', `the harness never fired the reply (twice): ${r.problems.join('; ')}`);
          assert.deepEqual(r.problems, [], `exit ${r.exit}${r.error ? ` ${r.error}` : ''}, then the clean run exited ${r.cleanExit}`);
        });
      }
    });
  }
}
