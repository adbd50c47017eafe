// `npm run bench` rebuilds dist/ when anything a build reads changed: the inputs come from the build scripts'
// own imports, so a module split out of a build script is an input too.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { buildInputs, isStale } from '../scripts/build-inputs.js';

const ROOT = resolve(import.meta.dirname, '..');
const temp = mkdtempSync(join(tmpdir(), 'keeper-rotate-build-inputs-'));
after(() => rmSync(temp, { recursive: true, force: true }));

test("each build's inputs are the sources, the dependency tree, its script and the modules the script imports", () => {
  const inputs = (script: string) => buildInputs(script, ROOT).map((p) => p.slice(ROOT.length + 1)).sort();
  // node-crypto-global.js and silent-debug.cjs are named by bundle-options.ts's esbuild options, not imported.
  const options = ['scripts/bundle-options.ts', 'scripts/node-crypto-global.js', 'scripts/silent-debug.cjs'];
  assert.deepEqual(inputs('scripts/build.ts'), ['package-lock.json', 'package.json', 'scripts/build.ts', ...options, 'src']);
  assert.deepEqual(inputs('scripts/build-binary.ts'), ['package-lock.json', 'package.json', 'scripts/build-binary.ts', ...options, 'scripts/node-runtime.ts', 'src'].sort());
});

test('the outputs are stale when one is missing, or when any input, a file in a folder included, is newer', () => {
  const at = (path: string, seconds: number, text = '') => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
    utimesSync(path, seconds, seconds);
    return path;
  };
  const src = join(temp, 'src');
  at(join(src, 'deep', 'a.ts'), 1_000);
  const options = at(join(temp, 'scripts', 'bundle-options.ts'), 1_000);
  const out = [at(join(temp, 'dist', 'one.cjs'), 2_000), at(join(temp, 'dist', 'two.cjs'), 3_000)];
  const inputs = [src, options];
  assert.equal(isStale(out, inputs), false);
  assert.equal(isStale([...out, join(temp, 'dist', 'missing.cjs')], inputs), true);
  // Newer than one output but not the other: that one is stale.
  utimesSync(options, 2_500, 2_500);
  assert.equal(isStale(out, inputs), true);
  utimesSync(options, 1_000, 1_000);
  assert.equal(isStale(out, inputs), false);
  utimesSync(join(src, 'deep', 'a.ts'), 2_500, 2_500);
  assert.equal(isStale(out, inputs), true);
});

test('local imports are followed through every module, not only the build script', () => {
  const dir = join(temp, 'chain');
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'scripts', 'build.ts'), "import { a } from './first.js';\nimport { s } from '../src/s.js';\nimport { build } from 'esbuild';\n");
  writeFileSync(join(dir, 'scripts', 'first.ts'), "export { b } from './second.js';\n");
  writeFileSync(join(dir, 'scripts', 'second.ts'), "import type { X } from \"./first.js\";\n");
  writeFileSync(join(dir, 'src', 's.ts'), "import { t } from '../scripts/first.js';\n");
  const inputs = buildInputs('scripts/build.ts', dir).map((p) => p.slice(dir.length + 1)).sort();
  assert.deepEqual(inputs, ['package-lock.json', 'package.json', 'scripts/build.ts', 'scripts/first.ts', 'scripts/second.ts', 'src']);
});
