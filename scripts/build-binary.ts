// `npm run build:binary [-- --outdir DIR] [--platform NAME ...]`: the keeper-rotate executable, one file per
// platform that runs on a host with no Node.js: a Node single executable application (SEA) built by the pinned
// Node's own `--build-sea` (scripts/node-runtime.ts). Its main script, a bundle of src/entrypoints/keeper-rotate.ts,
// answers --help and --version and picks the target; each target's script is an asset of its own, loaded by
// src/cli/target-assets.ts once chosen.
//
// The host's platform is built with V8 code caches and is written as DIR/keeper-rotate: the main script's (made
// by --build-sea) and each target's, made from rotations on the sandbox (see trainCodeCaches). The others
// are cross-built without them (a code cache is only valid for the V8 and CPU that made it) as
// DIR/keeper-rotate-<platform>[.exe]. The per-target .cjs bundles (`npm run build`) are separate and unchanged.
import { build, type Plugin } from 'esbuild';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { assetKeys } from '../src/cli/target-assets.js';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { startSandbox } from '../src/sandbox/sandbox.js';
import { BUNDLE_OPTIONS, LAZY_OWN_FOLDERS, SDK_PLUGINS, TARGET_SCRIPTS, defaultImportsOfGlobals, lazyBuiltins } from './bundle-options.js';
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

/**
 * The executable's own options (the SEA's execArgv). Only ones that leave V8's code generation alone: any flag that
 * changes it (--liftoff-only, --no-opt, --max-lazy...) makes V8 reject the code cache of every module of Node's own
 * (compiled from source instead: ~30 ms more per rotation) and the caches trained here. Heap sizes are neutral.
 *
 * --max-semi-space-size=1: V8's young generation grows to 2-4 MiB a half in a rotation; capped at 1 MiB, the
 * scavenges are more but as quick, and the peak resident memory 1.5 MB lower (measured: AWS 72.4 -> 70.8 MB,
 * Azure 68.8 -> 67.4 MB, the same CPU time). The build's own runs (the SEA builder, the training) use them too.
 *
 * --v8-pool-size=1 (Node's, not V8's: the cache is untouched): one V8 worker thread, not four, for the concurrent
 * marking and compile jobs of a run that lasts a tenth of a second on a gateway of two cores or so. Measured (10
 * pairs, load average 4): CPU 0.985x / 0.981x / 0.982x (Azure / AWS / Wiz), peak RSS 0.2 MB lower. Flags that
 * were measured and left out: --single-threaded-gc (Wiz +4 % CPU), the default young generation (no less CPU,
 * more memory), --max-old-space-size=16 (0.6 MB less, 11 % more CPU in GCs), UV_THREADPOOL_SIZE=1 (no change).
 */
const EXEC_ARGV = ['--max-semi-space-size=1', '--v8-pool-size=1'];

const ROOT = resolve('.');
const TARGETS_MODULE = resolve('src', 'cli', 'targets.ts');
const EXECUTABLE_MODULE = resolve('src', 'entrypoints', 'keeper-rotate.ts');
const ASSETS_MODULE = resolve('src', 'cli', 'target-assets.ts');
/**
 * The admin's commands, each an asset of its own loaded like a target's (no code cache: neither is on a rotation's
 * path): the module the main script imports, the source the asset bundles, and what it exports.
 */
const COMMAND_ASSETS: Record<string, { module: string; source: string; exports: string }> = {
  report: { module: '../report/process.js', source: './src/report/process.ts', exports: 'startReport' },
  discover: { module: '../discover/main.js', source: './src/discover/main.ts', exports: 'runDiscover' },
};

/**
 * Links the main script's two `import()`s to the targets' assets (src/cli/target-assets.ts) instead of bundling
 * the targets in: a target's script (src/cli/targets.ts) is the `script` of its asset, and the process glue
 * (src/entrypoints/keeper-rotate.ts) is the `startScript` of the asset that defined the script it is given.
 */
const targetAssets: Plugin = {
  name: 'target-assets',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const target = /^\.\.\/targets\/([a-z0-9-]+)\/script\.js$/.exec(args.path)?.[1];
      if (args.importer === TARGETS_MODULE && target && TARGET_SCRIPTS.includes(target)) return { path: target, namespace: 'target-asset' };
      if (args.importer === EXECUTABLE_MODULE && args.path === './entry.js') return { path: 'entry', namespace: 'target-glue' };
      const command = Object.keys(COMMAND_ASSETS).find((name) => COMMAND_ASSETS[name]!.module === args.path);
      if (args.importer === EXECUTABLE_MODULE && command) return { path: command, namespace: 'command-asset' };
      return { errors: [{ text: `import() of ${args.path} in ${args.importer}: the executable's main script loads nothing but the targets' assets` }] };
    });
    b.onLoad({ filter: /.*/, namespace: 'target-asset' }, (args) => ({
      contents: `import { loadTarget } from ${JSON.stringify(ASSETS_MODULE)};\nexport const script = loadTarget(${JSON.stringify(args.path)}).script;\n`,
      loader: 'ts',
      resolveDir: ROOT,
    }));
    b.onLoad({ filter: /.*/, namespace: 'command-asset' }, (args) => ({
      contents: `import { loadAsset } from ${JSON.stringify(ASSETS_MODULE)};\nexport const ${COMMAND_ASSETS[args.path]!.exports} = (...a) => loadAsset(${JSON.stringify(args.path)}).${COMMAND_ASSETS[args.path]!.exports}(...a);\n`,
      loader: 'ts',
      resolveDir: ROOT,
    }));
    b.onLoad({ filter: /.*/, namespace: 'target-glue' }, () => ({
      contents: `import { loadTarget } from ${JSON.stringify(ASSETS_MODULE)};\nexport const startScript = (script, launch) => loadTarget(script.name).startScript(script, launch);\n`,
      loader: 'ts',
      resolveDir: ROOT,
    }));
  },
};

/**
 * The AWS clients (IAM, STS, ECR) compiled with web streams absent, as BUNDLE_OPTIONS compiles fetch's classes:
 * before every request the SDK asks whether the body is a web stream (`typeof ReadableStream !== "undefined" &&
 * body instanceof ReadableStream`), and on Node 26 that first touch loads the web streams modules. These clients
 * send and receive only strings and Node streams; the one construction in the bundle (`new ReadableStream`, for
 * event streams, which none of their operations has) would fail rather than load them. Only in these assets:
 * elsewhere (the Azure HTTP runtime's multipart bodies) a use is not behind a probe.
 */
const AWS_CLIENT_DEFINES = { ReadableStream: 'undefined' };

/**
 * Modules that a target's asset imports with `await import()`, each an asset of its own that the importing asset
 * loads (src/cli/target-assets.ts `loadAsset`) only when the run imports it. Our own modules they import (errors,
 * secrets, the HTTP agent and its one agent per host) stay the importing asset's, handed over by the `require` it
 * gives, so `instanceof RotateError` holds across the boundary (as in scripts/build.ts's lazy chunks for the .cjs
 * scripts); only the modules of its own folder (LAZY_OWN_FOLDERS in scripts/bundle-options.ts) go with it.
 *
 * Two reasons. Bundled into the target's asset, an `import()`ed module is wrapped to start only when imported, and
 * esbuild then keeps, and starts, all of every package it imports: the AWS asset carried and started all 196 of
 * IAM's commands and their schemas where iam.ts uses 15. Built as an entry of its own, it is tree-shaken as the
 * .cjs scripts' chunks are. And a module that only some runs need (the Kubernetes client and its dependencies:
 * 1.7 MB of the 2.4 MB AWS asset) is no longer read from the executable and copied into V8's heap at every start.
 * The build trains a code cache for each one a rotation of the demo records runs (see trainCodeCaches).
 */
const LAZY_ASSETS: Record<string, { entry: string; define?: Record<string, string> }> = {
  'kubernetes-client': { entry: resolve('src', 'destinations', 'kubernetes', 'client.ts') },
  'aws-iam': { entry: resolve('src', 'targets', 'aws-iam-access-key', 'iam.ts'), define: AWS_CLIENT_DEFINES },
  'aws-host-credentials': { entry: resolve('src', 'targets', 'aws-iam-access-key', 'host-credentials.ts') },
  'aws-ecr': { entry: resolve('src', 'targets', 'aws-ecr-pull-secret', 'ecr.ts'), define: AWS_CLIENT_DEFINES },
  'azure-graph': { entry: resolve('src', 'targets', 'azure-app-secret', 'graph.ts') },
};
const SRC = resolve('src');

/** A lazy asset's source: its module and what it needs but ours, with the modules of ours it shares. */
async function lazyAssetSource(name: string): Promise<{ code: string; shared: string[] }> {
  const { entry, define } = LAZY_ASSETS[name]!;
  const own = LAZY_OWN_FOLDERS[entry];
  const shared = new Set<string>();
  const result = await build({
    ...BUNDLE_OPTIONS,
    define: { ...BUNDLE_OPTIONS.define, ...define },
    target: `node${NODE_VERSION.split('.')[0]}`,
    entryPoints: [entry],
    write: false,
    outfile: `${name}.js`,
    plugins: [
      ...SDK_PLUGINS,
      {
        name: 'share-sources',
        setup(b) {
          // A module of ours, but the entry and those in its own folder, is the importing asset's, by its path in src/.
          b.onResolve({ filter: /^\.\.?\// }, async (args) => {
            if (args.pluginData === 'inner') return undefined;
            const r = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, pluginData: 'inner' });
            if (r.errors.length || !r.path.startsWith(SRC + sep) || r.path === entry || (own && r.path.startsWith(own + sep))) return undefined;
            const key = relative(ROOT, r.path).split(sep).join('/');
            shared.add(key);
            return { path: key, external: true };
          });
        },
      },
    ],
  });
  const code = result.outputFiles[0]!.text;
  assertNoImport(`${name}'s asset`, code);
  return { code: `(function (exports, require, module) {\n${code}\n})`, shared: [...shared] };
}

const lazySources = new Map<string, Promise<{ code: string; shared: string[] }>>();

/** Links a target asset's `import()` of a LAZY_ASSETS module to loading that asset. */
const lazyAssets: Plugin = {
  name: 'lazy-assets',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const found = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: 'import-statement' });
      const name = Object.keys(LAZY_ASSETS).find((n) => LAZY_ASSETS[n]!.entry === found.path);
      return name ? { path: name, namespace: 'lazy-asset' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-asset' }, async (args) => {
      if (!lazySources.has(args.path)) lazySources.set(args.path, lazyAssetSource(args.path));
      const { shared } = await lazySources.get(args.path)!;
      const requires = shared.map((key) => `${JSON.stringify(key)}: () => require(${JSON.stringify(join(ROOT, key))})`).join(',\n  ');
      return {
        contents: `const { loadAsset } = require(${JSON.stringify(ASSETS_MODULE)});
const shared = {
  ${requires}
};
module.exports = loadAsset(${JSON.stringify(args.path)}, (id) => (Object.hasOwn(shared, id) ? shared[id]() : require(id)));
`,
        loader: 'js',
        resolveDir: ROOT,
      };
    });
  },
};

/** Node's SEA: import() does not work in the main script when useCodeCache is on, nor in a vm.Script (BUNDLE_OPTIONS lowers it). */
function assertNoImport(what: string, code: string): void {
  if (/\bimport\(/.test(code)) throw new Error(`${what} still holds an import(), which fails in the single executable`);
}

/**
 * A target's asset: its script definition and the process glue in one bundle (so they share one copy of every
 * module, and `instanceof RotateError` holds between them), as a CommonJS function expression that
 * src/cli/target-assets.ts compiles with vm.Script and calls with (exports, require, module).
 */
async function targetAsset(name: string, outfile: string): Promise<void> {
  const command = COMMAND_ASSETS[name];
  const contents = command
    ? `export { ${command.exports} } from '${command.source}';\n`
    : `export { script } from './src/targets/${name}/script.ts';\nexport { startScript } from './src/entrypoints/entry.ts';\n`;
  const result = await build({
    ...BUNDLE_OPTIONS,
    target: `node${NODE_VERSION.split('.')[0]}`,
    stdin: {
      contents,
      resolveDir: ROOT,
      sourcefile: `${name}.ts`,
      loader: 'ts',
    },
    write: false,
    outfile,
    plugins: [lazyAssets, lazyBuiltins, defaultImportsOfGlobals],
  });
  const code = result.outputFiles[0]!.text;
  assertNoImport(`${name}'s asset`, code);
  // src/cli/target-assets.ts reads the asset's bytes as one-byte characters (latin1), not as UTF-8.
  if (/[^\x00-\x7f]/.test(code)) throw new Error(`${name}'s asset is not ASCII: esbuild's charset option must stay ascii`);
  writeFileSync(outfile, `(function (exports, require, module) {\n${code}\n})`);
}

/** Runs `file args` with `stdin`, without blocking this process (the sandbox answers it from here). */
function runAsync(file: string, args: string[], env: NodeJS.ProcessEnv, stdin: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', fail);
    child.stdin.end(stdin);
    child.on('close', (code) => done({ code, output }));
  });
}

/**
 * Loads a target's asset as the executable does, and writes V8's code cache for it, and for each lazy asset the run
 * loaded, as the process exits. Outside the executable there is no node:sea: the asset is given a require whose
 * node:sea reads the assets from the build's folder, and whose node:vm keeps each Script the asset compiles.
 */
const TRAINER = `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const [source, dir] = process.argv.slice(2);
const cacheOf = (file) => file.replace(/\\.js$/, '.cache');
const scripts = new Map();
class Script extends vm.Script {
  constructor(code, options) {
    super(code, options);
    if (options.cachedData && this.cachedDataRejected) throw new Error('the previous training run\\'s code cache of ' + options.filename + ' was rejected');
    scripts.set(path.join(dir, path.basename(options.filename)), this);
  }
}
const sea = {
  getRawAsset(key) {
    const bytes = fs.readFileSync(path.join(dir, path.basename(key)));
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  },
};
const shim = (id) => (id === 'node:sea' ? sea : id === 'node:vm' ? { ...vm, Script } : require(id));
const file = path.join(dir, path.basename(source));
const cachedData = fs.existsSync(cacheOf(file)) ? fs.readFileSync(cacheOf(file)) : undefined;
const script = new Script(fs.readFileSync(file, 'latin1'), { filename: file, cachedData });
process.on('exit', () => { for (const [f, s] of scripts) fs.writeFileSync(cacheOf(f), s.createCachedData()); });
const asset = { exports: {} };
script.runInThisContext()(asset.exports, shim, asset);
asset.exports.startScript(asset.exports.script, { argv: [] });
`;

/**
 * Each target's code cache, made by the pinned runtime running the target's asset through whole rotations of the
 * demo record on the sandbox: the first from the demo state, then one in steady state (AWS deletes LAST, Azure
 * retires a secret), the second run starting from the first's cache. V8 writes into a code cache every function
 * compiled so far, so the cache holds what rotations run, not only the top level. Both runs have the executable's
 * options (EXEC_ARGV).
 */
async function trainCodeCaches(runtime: string, work: string, sources: Record<string, string>): Promise<Record<string, string>> {
  // The assets go by their file names in `work`: NAME.js, and the training's NAME.cache beside it.
  const trainer = join(work, 'train.cjs');
  writeFileSync(trainer, TRAINER);
  const sandbox = await startSandbox({ dir: join(work, 'sandbox') });
  const env: NodeJS.ProcessEnv = { ...process.env, ...sandbox.env };
  // Whatever started the build (tsx, npm) must not load anything into the training runs.
  delete env.NODE_OPTIONS;
  const caches: Record<string, string> = {};
  try {
    for (const name of TARGET_SCRIPTS) {
      const cache = join(work, `${name}.cache`);
      const line = encodeGatewayInput(JSON.parse(readFileSync(join('fixtures', `${name}.json`), 'utf8')) as Record<string, unknown>) + '\n';
      for (const rotation of ['first', 'steady-state']) {
        const r = await runAsync(runtime, [...EXEC_ARGV, trainer, sources[name]!, work], env, line);
        if (r.code !== 0) throw new Error(`training ${name}'s code cache: the ${rotation} rotation exited ${r.code}:\n${r.output}`);
      }
      if (!existsSync(cache)) throw new Error(`training ${name}'s code cache wrote none`);
      caches[name] = cache;
    }
    // The lazy assets the rotations loaded.
    for (const name of Object.keys(LAZY_ASSETS)) if (existsSync(join(work, `${name}.cache`))) caches[name] = join(work, `${name}.cache`);
  } finally {
    await sandbox.close();
  }
  return caches;
}

const started = performance.now();
const work = mkdtempSync(join(tmpdir(), 'keeper-rotate-sea-'));
try {
  const main = join(work, 'keeper-rotate.cjs');
  await build({ ...BUNDLE_OPTIONS, target: `node${NODE_VERSION.split('.')[0]}`, entryPoints: [EXECUTABLE_MODULE], outfile: main, plugins: [targetAssets, lazyBuiltins, defaultImportsOfGlobals] });
  assertNoImport('the main script', readFileSync(main, 'utf8'));
  const sources: Record<string, string> = {};
  for (const name of [...TARGET_SCRIPTS, ...Object.keys(COMMAND_ASSETS)]) await targetAsset(name, (sources[name] = join(work, `${name}.js`)));
  const lazyNames = [...lazySources.keys()];
  for (const name of lazyNames) writeFileSync((sources[name] = join(work, `${name}.js`)), (await lazySources.get(name)!).code);
  const builder = runtimeBinary(host, cacheDir);
  const caches = platforms.includes(host) ? await trainCodeCaches(builder, work, sources) : {};
  mkdirSync(outdir, { recursive: true });
  for (const platform of platforms as Platform[]) {
    const output = join(outdir, outputName(platform));
    const config = join(work, `sea-${platform}.json`);
    const withCache = platform === host;
    const assets: Record<string, string> = {};
    for (const name of TARGET_SCRIPTS) {
      const keys = assetKeys(name);
      assets[keys.source] = sources[name]!;
      if (withCache) assets[keys.cache] = caches[name]!;
    }
    for (const name of [...Object.keys(COMMAND_ASSETS), ...lazyNames]) assets[assetKeys(name).source] = sources[name]!;
    if (withCache) for (const name of lazyNames) if (caches[name]) assets[assetKeys(name).cache] = caches[name]!;
    writeFileSync(
      config,
      JSON.stringify({
        main,
        output,
        executable: runtimeBinary(platform, cacheDir),
        disableExperimentalSEAWarning: true,
        useCodeCache: withCache,
        execArgv: EXEC_ARGV,
        // NODE_OPTIONS still applies, as it does to the .cjs bundles under node (e.g. --use-system-ca).
        execArgvExtension: 'env',
        assets,
      }),
    );
    const r = spawnSync(builder, [...EXEC_ARGV, '--build-sea', config], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`--build-sea for ${platform} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`);
    if (!platform.startsWith('win-')) chmodSync(output, 0o755);
    const mib = (statSync(output).size / 2 ** 20).toFixed(1);
    console.log(`built ${join(values.outdir!, outputName(platform))} (${platform}, Node ${NODE_VERSION}, ${mib} MiB${withCache ? ', V8 code caches' : ''})`);
  }
  console.log(`build:binary took ${((performance.now() - started) / 1000).toFixed(1)} s`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
