// `npm run build`: one self-contained CommonJS file per target in dist/, runnable by `node` with no
// node_modules beside it. CommonJS because the gateway's file name and extension for a downloaded script are
// not documented, and a .cjs bundle runs the same whatever it is called.
import { build, type Plugin } from 'esbuild';
import { chmodSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { BUNDLE_OPTIONS as COMMON, SDK_PLUGINS, TARGET_SCRIPTS, defaultImportsOfGlobals, lazyBuiltins, noJsonwebtoken } from './bundle-options.js';

// --outdir lets the bundle test build into a temporary folder without touching dist/.
const outdir = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } }).values.outdir!;

const SRC = resolve('src');
const LEGAL = '\n/*! Bundled license information:';

/**
 * A module that the sources load with `await import()` (a target's SDK adapter, loaded by `connect` once the
 * input and the record are validated) goes into the script as a gzipped, base64 string, compiled only when a
 * run imports it. Bundled as plain code, V8 would still have to pre-parse its ~500 KiB of SDK at every start,
 * --help and rejected input included. The module keeps sharing our own modules (errors, secrets) with the rest
 * of the script: those stay in the main bundle and are handed to it by `require`, so `instanceof RotateError`
 * holds across the boundary. Only Node built-ins are required from outside, as in the rest of the bundle.
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
      const chunk = await build({
        ...COMMON,
        entryPoints: [args.path],
        write: false,
        outfile: 'chunk.cjs',
        plugins: [
          ...SDK_PLUGINS,
          {
            name: 'share-sources',
            setup(c) {
              // Our own modules imported by the chunk's entry are the main bundle's, not copies.
              c.onResolve({ filter: /^\.\.?\// }, async (a) => {
                if (a.importer !== args.path || a.pluginData === 'inner') return undefined;
                const r = await c.resolve(a.path, { resolveDir: a.resolveDir, kind: a.kind, pluginData: 'inner' });
                if (r.errors.length || !r.path.startsWith(SRC) || r.path === args.path) return undefined;
                shared.add(a.path);
                return { path: a.path, external: true };
              });
            },
          },
        ],
      });
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
      return { contents, loader: 'js', resolveDir: dirname(args.path), watchFiles: Object.keys(chunk.metafile?.inputs ?? {}) };
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
  const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0;
  console.log(`built ${outfile} (${Math.round(bytes / 1024)} KiB)`);
}
