// What `npm run build` (a .cjs bundle per target) and `npm run build:binary` (the keeper-rotate executable)
// share: the target list and esbuild's options.
import type { BuildOptions } from 'esbuild';
import { readFileSync, readdirSync } from 'node:fs';

/** Entry points that are not a target's script: the glue they share, and the executable that runs them all. */
const NOT_TARGETS = new Set(['entry.ts', 'keeper-rotate.ts']);

/** One per target: src/entrypoints/<name>.ts, built alone into dist/<name>.cjs. */
export const TARGET_SCRIPTS = readdirSync('src/entrypoints')
  .filter((f) => f.endsWith('.ts') && !NOT_TARGETS.has(f))
  .map((f) => f.replace(/\.ts$/, ''));

export const { version: PACKAGE_VERSION } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

export const BUNDLE_OPTIONS: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  legalComments: 'eof',
  define: {
    __KEEPER_ROTATE_VERSION__: JSON.stringify(PACKAGE_VERSION),
    // fetch's classes, compiled as absent. Node builds them from undici, and the first touch of any of them, even
    // `typeof FormData`, loads and starts all of it (130 modules, ~40 ms of CPU and 10 MB on Node 26). Nothing
    // here uses them (src/http/fetch.ts answers with a FetchReply), but the SDKs probe for them before every
    // request: the Graph client's `typeof Request !== "undefined" && request instanceof Request` (and Headers),
    // the Azure pipeline's `typeof FormData !== "undefined" && body instanceof FormData`. A use that is not a
    // probe would fail with "undefined is not a constructor", never load undici behind our back.
    Request: 'undefined',
    Response: 'undefined',
    Headers: 'undefined',
    FormData: 'undefined',
  },
  logLevel: 'warning',
  // The ES module builds first, for packages that have both and no `exports` map (the AWS clients, the Graph
  // client): esbuild can drop what a script never calls (most of IAM's 170 operations), and the AWS SDK is no
  // longer half CommonJS, half ES modules. About 9 MB less peak memory for the AWS script.
  mainFields: ['module', 'main'],
  // No `import()` is left in the output: esbuild turns each into a `require` in a promise. A lazy chunk is
  // compiled by `vm.compileFunction`, which has no loader for `import()` ("A dynamic import callback was not
  // specified"), and the AWS SDK's HTTP handler imports node:http that way for an http:// endpoint. The
  // executable's main script is the same case (Node's SEA: "import() does not work when useCodeCache is true").
  supported: { 'dynamic-import': false },
  // The proxy agents' logging, silenced (scripts/silent-debug.cjs says why).
  alias: { debug: './scripts/silent-debug.cjs' },
};
