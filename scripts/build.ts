// `npm run build`: one self-contained CommonJS file per target in dist/, runnable by `node` with no
// node_modules beside it. CommonJS because the gateway's file name and extension for a downloaded script are
// not documented, and a .cjs bundle runs the same whatever it is called.
import { build, type Metafile, type Plugin } from 'esbuild';
import { chmodSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { BUNDLE_OPTIONS as COMMON, LAZY_OWN_FOLDERS, SDK_PLUGINS, TARGET_SCRIPTS, defaultImportsOfGlobals, lazyBuiltins, noJsonwebtoken } from './bundle-options.js';

// --outdir lets the bundle test build into a temporary folder without touching dist/.
const outdir = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } }).values.outdir!;

const SRC = resolve('src');
const LEGAL = '\n/*! Bundled license information:';

/** The packages each lazy chunk's entry imports itself (its SDK), by the entry's path: see the check below. */
const chunkPackages = new Map<string, Set<string>>();

/** The packages (folders under node_modules) that `entry`, one of the build's inputs, imports directly. */
function packagesImportedBy(metafile: Metafile, entry: string): Set<string> {
  const input = metafile.inputs[relative(process.cwd(), entry).split(sep).join('/')];
  if (!input) throw new Error(`${entry} is not among its chunk's inputs`);
  return new Set(input.imports.map((i) => packageOf(i.path)).filter((p): p is string => p !== undefined));
}

/** `node_modules/@scope/name/...` -> `@scope/name`; undefined for a path outside node_modules. */
function packageOf(path: string): string | undefined {
  return /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];
}

/**
 * A module that the sources load with `await import()` (a target's SDK adapter, loaded by `connect` once the
 * input and the record are validated) goes into the script as a gzipped, base64 string, compiled only when a
 * run imports it. Bundled as plain code, V8 would still have to pre-parse its ~500 KiB of SDK at every start,
 * --help and rejected input included. The module keeps sharing our own modules (errors, secrets) with the rest
 * of the script: those stay in the main bundle and are handed to it by `require`, so `instanceof RotateError`
 * holds across the boundary; only those in its own folder (LAZY_OWN_FOLDERS) go with it. Only Node built-ins are
 * required from outside, as in the rest of the bundle.
 */
const lazyChunks: Plugin = {
  name: 'lazy-chunks',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.kind !== 'dynamic-import' || !args.importer.startsWith(SRC)) return undefined;
      const found = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: 'import-statement' });
      if (found.errors.length) return { errors: found.errors };
      return { path: found.path, namespace: 'lazy-chunk' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-chunk' }, async (args) => {
      const shared = new Set<string>();
      const own = LAZY_OWN_FOLDERS[args.path];
      const chunk = await build({
        ...COMMON,
        entryPoints: [args.path],
        write: false,
        outfile: 'chunk.cjs',
        metafile: true,
        plugins: [
          ...SDK_PLUGINS,
          {
            name: 'share-sources',
            setup(c) {
              // Our own modules that the chunk imports, but its entry and those in its own folder, are the main
              // bundle's, not copies. Each is named by its path from the entry's folder, which the main bundle
              // resolves the wrapper's require() from.
              c.onResolve({ filter: /^\.\.?\// }, async (a) => {
                if (a.pluginData === 'inner' || !a.importer.startsWith(SRC + sep)) return undefined;
                const r = await c.resolve(a.path, { resolveDir: a.resolveDir, kind: a.kind, pluginData: 'inner' });
                if (r.errors.length || !r.path.startsWith(SRC + sep) || r.path === args.path || (own && r.path.startsWith(own + sep))) return undefined;
                const key = relative(dirname(args.path), r.path).split(sep).join('/');
                const spec = key.startsWith('.') ? key : `./${key}`;
                shared.add(spec);
                return { path: spec, external: true };
              });
            },
          },
        ],
      });
      chunkPackages.set(args.path, packagesImportedBy(chunk.metafile, args.path));
      let code = chunk.outputFiles[0]!.text;
      const legalAt = code.lastIndexOf(LEGAL);
      const legal = legalAt >= 0 ? code.slice(legalAt) : '';
      if (legalAt >= 0) code = code.slice(0, legalAt);
      const payload = gzipSync(code, { level: 9 }).toString('base64');
      const name = relative(SRC, args.path).replace(/\\/g, '/');
      const requires = [...shared].map((p) => `${JSON.stringify(p)}: () => require(${JSON.stringify(p)})`).join(', ');
      const contents = `${legal}
const shared = { ${requires} };
const source = require("node:zlib").gunzipSync(Buffer.from(${JSON.stringify(payload)}, "base64")).toString("utf8");
const run = require("node:vm").compileFunction(source, ["exports", "require", "module", "__filename", "__dirname"], { filename: __filename + "#" + ${JSON.stringify(name)} });
const chunk = { exports: {} };
run(chunk.exports, (id) => (Object.hasOwn(shared, id) ? shared[id]() : require(id)), chunk, __filename, __dirname);
module.exports = chunk.exports;
`;
      return { contents, loader: 'js', resolveDir: dirname(args.path), watchFiles: Object.keys(chunk.metafile.inputs) };
    });
  },
};

for (const name of TARGET_SCRIPTS) {
  const outfile = join(outdir, `${name}.cjs`);
  const result = await build({
    ...COMMON,
    entryPoints: [join('src', 'entrypoints', `${name}.ts`)],
    outfile,
    banner: { js: '#!/usr/bin/env node' },
    metafile: true,
    plugins: [lazyChunks, lazyBuiltins, defaultImportsOfGlobals, noJsonwebtoken],
  });
  chmodSync(outfile, 0o755);
  // A lazy chunk's SDK is in the script only gzipped, compiled by the runs that import it. Should a module the
  // chunk shares with the script import that SDK too, the script's own code, which every start compiles, holds a
  // second copy (as from 338e07a: the Kubernetes client, 910 KiB, 12 MB of peak memory in every rotation).
  const inScript = new Set(Object.keys(result.metafile.inputs).map(packageOf));
  for (const [entry, packages] of chunkPackages) {
    const twice = [...packages].filter((p) => inScript.has(p));
    if (twice.length) {
      throw new Error(
        `${outfile}: ${twice.join(', ')}, imported lazily by ${relative(SRC, entry)}, is also in the script's own code: a module of ours ` +
          'that the chunk shares with the script imports it (put that module in the chunk: LAZY_OWN_FOLDERS in scripts/bundle-options.ts)',
      );
    }
  }
  chunkPackages.clear();
  const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0;
  console.log(`built ${outfile} (${Math.round(bytes / 1024)} KiB)`);
}
