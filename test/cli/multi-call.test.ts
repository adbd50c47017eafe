// The executable's first argument picks the target; nothing else runs before it is picked. What the built
// executable does with the same arguments is in test/binary.test.ts.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { build } from 'esbuild';
import { type TargetEntry, chooseTarget, executableInvocation } from '../../src/cli/multi-call.js';
import { TARGETS } from '../../src/cli/targets.js';
import { VERSION } from '../../src/version.js';

const PER_TARGET = readdirSync(join('src', 'entrypoints'))
  .filter((f) => f.endsWith('.ts') && f !== 'entry.ts' && f !== 'keeper-rotate.ts')
  .map((f) => f.slice(0, -3));

const loadNothing = async () => {
  throw new Error('a target was loaded');
};
const FAKE: Record<string, TargetEntry> = { alpha: { title: 'Alpha secret', load: loadNothing }, 'beta-key': { title: 'Beta key', load: loadNothing } };

describe('chooseTarget', () => {
  test('the first argument names the target; the rest are its own', () => {
    const c = chooseTarget(['beta-key', '--dry-run', '--log-format=json'], FAKE);
    assert.equal(c.kind, 'run');
    assert.ok(c.kind === 'run');
    assert.equal(c.name, 'beta-key');
    assert.equal(c.entry, FAKE['beta-key']);
    assert.deepEqual(c.argv, ['--dry-run', '--log-format=json']);
  });

  test('--version and --help answer without a target, and the help lists every target with its title', () => {
    for (const flag of ['--version', '-v']) assert.deepEqual(chooseTarget([flag], FAKE), { kind: 'answered', exitCode: 0, stdout: `keeper-rotate ${VERSION}\n` });
    for (const flag of ['--help', '-h']) {
      const c = chooseTarget([flag], FAKE);
      assert.ok(c.kind === 'answered' && c.exitCode === 0 && !c.error);
      assert.match(c.stdout!, /^Usage: keeper-rotate TARGET \[--dry-run\]/m);
      assert.match(c.stdout!, /^ {2}alpha +Alpha secret$/m);
      assert.match(c.stdout!, /^ {2}beta-key +Beta key$/m);
    }
  });

  test('no target, an unknown one, or a flag before the target: USAGE (exit 2), naming the targets', () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /^no target given; /],
      [['gamma'], /^unknown target "gamma"; /],
      [['--dry-run', 'alpha'], /^unknown argument "--dry-run" before the target; /],
      // A name someone mistyped may hold a pasted secret: at most 20 characters are quoted.
      [['x'.repeat(30)], new RegExp(`^unknown target "${'x'.repeat(20)}"; `)],
      // Not a target: the names of Object.prototype's own properties.
      [['constructor'], /^unknown target "constructor"; /],
    ];
    for (const [argv, message] of cases) {
      const c = chooseTarget(argv, FAKE);
      assert.ok(c.kind === 'answered', argv.join(' '));
      assert.equal(c.exitCode, 2);
      assert.equal(c.error?.code, 'USAGE');
      assert.match(c.error!.message, message);
      assert.match(c.error!.message, /: alpha, beta-key \(see keeper-rotate --help\)$/);
    }
  });

  test("a target's --help says to run it as `keeper-rotate TARGET` through its wrapper", () => {
    const i = executableInvocation('beta-key');
    assert.equal(i.command, 'keeper-rotate beta-key');
    assert.match(i.attach, /beta-key\.sh/);
  });
});

describe('the executable\'s targets', () => {
  test('one per target entry point, each loading the script of that name', async () => {
    assert.deepEqual(Object.keys(TARGETS).sort(), [...PER_TARGET].sort());
    for (const [name, entry] of Object.entries(TARGETS)) assert.equal((await entry.load()).name, name);
  });

  test('before a target is chosen, the entry point loads none of our packages (no SDK), only the choice', async () => {
    // What runs at start is the static import graph; a target's script and the process glue are import()ed.
    const r = await build({
      entryPoints: [join('src', 'entrypoints', 'keeper-rotate.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [{ name: 'dynamic-external', setup: (b) => b.onResolve({ filter: /.*/ }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, external: true } : undefined)) }],
    });
    const inputs = Object.keys(r.metafile.inputs);
    assert.ok(inputs.includes('src/cli/multi-call.ts'), inputs.join(', '));
    assert.deepEqual(inputs.filter((p) => p.includes('node_modules')), []);
    assert.deepEqual(inputs.filter((p) => /src\/(targets|keeper|pipeline|entrypoints\/entry)/.test(p)), []);
  });
});
