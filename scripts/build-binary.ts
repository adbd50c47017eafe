// `npm run build:binary [-- --outdir DIR] [--platform NAME ...]`: the keeper-rotate executable, one file per
// platform that runs on a host with no Node.js: a Node single executable application (SEA) built by the pinned
// Node's own `--build-sea` (scripts/node-runtime.ts) around one bundle of src/entrypoints/keeper-rotate.ts.
//
// The host's platform is built with the V8 code cache (the embedded script starts without being parsed) and
// is written as DIR/keeper-rotate; the others are cross-built without it (a code cache is only valid for the
// V8 and CPU that made it) as DIR/keeper-rotate-<platform>[.exe]. The per-target .cjs bundles (`npm run build`)
// are separate and unchanged.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BUNDLE_OPTIONS } from './bundle-options.js';
import { NODE_VERSION, PLATFORMS, type Platform, hostPlatform, isPlatform, runtimeBinary } from './node-runtime.js';

const { values } = parseArgs({
  options: {
    outdir: { type: 'string', default: 'dist' },
    platform: { type: 'string', multiple: true },
    'cache-dir': { type: 'string', default: join('node_modules', '.cache', 'keeper-rotate-node') },
  },
});
const outdir = resolve(values.outdir!);
const cacheDir = resolve(values['cache-dir']!);
const platforms = values.platform?.flatMap((p) => p.split(',')) ?? [...PLATFORMS];
for (const p of platforms) if (!isPlatform(p)) throw new Error(`unknown platform ${p}; one of ${PLATFORMS.join(', ')}`);
const host = hostPlatform();
// --build-sea must run on the very Node version it embeds, so the builder is the pinned runtime for this host.
if (!host) throw new Error(`build:binary runs on ${PLATFORMS.join(', ')} hosts (it runs the pinned Node ${NODE_VERSION} for this host); this is ${process.platform}-${process.arch}`);

function outputName(platform: Platform): string {
  const exe = platform.startsWith('win-') ? '.exe' : '';
  return platform === host ? `keeper-rotate${exe}` : `keeper-rotate-${platform}${exe}`;
}

const started = performance.now();
const work = mkdtempSync(join(tmpdir(), 'keeper-rotate-sea-'));
try {
  const main = join(work, 'keeper-rotate.cjs');
  // Everything in one script, no lazy chunks: the code cache can then cover all of it, and nothing is compiled
  // by vm.compileFunction at run time. A target's modules still run only once it is chosen (esbuild keeps a
  // dynamically imported module unevaluated until the import).
  await build({ ...BUNDLE_OPTIONS, target: `node${NODE_VERSION.split('.')[0]}`, entryPoints: [join('src', 'entrypoints', 'keeper-rotate.ts')], outfile: main });
  // Node's SEA: import() does not work in the main script when useCodeCache is on (BUNDLE_OPTIONS lowers it).
  if (/\bimport\(/.test(readFileSync(main, 'utf8'))) throw new Error('the bundle still holds an import(), which fails in a single executable');
  const builder = runtimeBinary(host, cacheDir);
  mkdirSync(outdir, { recursive: true });
  for (const platform of platforms as Platform[]) {
    const output = join(outdir, outputName(platform));
    const config = join(work, `sea-${platform}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        main,
        output,
        executable: runtimeBinary(platform, cacheDir),
        disableExperimentalSEAWarning: true,
        useCodeCache: platform === host,
        // NODE_OPTIONS still applies, as it does to the .cjs bundles under node (e.g. --use-system-ca).
        execArgvExtension: 'env',
      }),
    );
    const r = spawnSync(builder, ['--build-sea', config], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`--build-sea for ${platform} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`);
    if (!platform.startsWith('win-')) chmodSync(output, 0o755);
    const mib = (statSync(output).size / 2 ** 20).toFixed(1);
    console.log(`built ${join(values.outdir!, outputName(platform))} (${platform}, Node ${NODE_VERSION}, ${mib} MiB${platform === host ? ', V8 code cache' : ''})`);
  }
  console.log(`build:binary took ${((performance.now() - started) / 1000).toFixed(1)} s`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
