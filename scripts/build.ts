// `npm run build`: one self-contained CommonJS file per target in dist/, runnable by `node` with no
// node_modules beside it. CommonJS because the gateway's file name and extension for a downloaded script are
// not documented, and a .cjs bundle runs the same whatever it is called.
import { build } from 'esbuild';
import { chmodSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export const SCRIPTS = readdirSync('src/scripts')
  .filter((f) => f.endsWith('.ts') && f !== 'entry.ts')
  .map((f) => f.replace(/\.ts$/, ''));

// --outdir lets the bundle test build into a temporary folder without touching dist/.
const outdir = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } }).values.outdir!;
const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

for (const name of SCRIPTS) {
  const outfile = join(outdir, `${name}.cjs`);
  const result = await build({
    entryPoints: [join('src', 'scripts', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    legalComments: 'eof',
    banner: { js: '#!/usr/bin/env node' },
    define: { __KEEPER_ROTATE_VERSION__: JSON.stringify(version) },
    logLevel: 'warning',
    metafile: true,
  });
  chmodSync(outfile, 0o755);
  const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0;
  console.log(`built ${outfile} (${Math.round(bytes / 1024)} KiB)`);
}
