// What `npm run build` (a .cjs bundle per target) and `npm run build:binary` (the keeper-rotate executable)
// share: the target list and esbuild's options.
import type { BuildOptions, Plugin } from 'esbuild';
import { readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

/** Entry points that are not a target's script: the glue they share, and the executable that runs them all. */
const NOT_TARGETS = new Set(['entry.ts', 'keeper-rotate.ts']);

/** One per target: src/entrypoints/<name>.ts, built alone into dist/<name>.cjs. */
export const TARGET_SCRIPTS = readdirSync('src/entrypoints')
  .filter((f) => f.endsWith('.ts') && !NOT_TARGETS.has(f))
  .map((f) => f.replace(/\.ts$/, ''));

/**
 * A module loaded with `await import()` whose folder is its alone, by the module's path: the modules in that folder
 * go with it into its lazy chunk (the .cjs scripts, scripts/build.ts) or lazy asset (the executable,
 * scripts/build-binary.ts). Every other module of ours that it imports is shared with the importing bundle, so
 * there is one copy of it (`instanceof RotateError` holds across). A module shared that way is compiled at every
 * start with the bundle, packages it imports included: src/destinations/kubernetes/http.ts, the Kubernetes
 * client's HTTP library, imports a class of @kubernetes/client-node, and shared it put the whole client (with
 * tr46's mapping table, ws, js-yaml: 910 KiB) into every script's own code: 12 MB more peak memory per run.
 */
export const LAZY_OWN_FOLDERS: Record<string, string> = {
  [resolve('src', 'destinations', 'kubernetes', 'client.ts')]: resolve('src', 'destinations', 'kubernetes'),
};

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
  // A bare `crypto` is node:crypto, not the web Crypto global (scripts/node-crypto-global.js says why).
  inject: ['./scripts/node-crypto-global.js'],
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

/**
 * Built-in modules that the SDKs import as their modules start but that a rotation calls seldom or never. Loading
 * one costs the same whether it is called or not (Node 26: zlib, with the zip modules it now loads, 4 ms of CPU
 * and 4.2 MB of peak memory; fs/promises 3.5 ms and 3.5 MB; assert 0.6 MB), so each is bundled as a stand-in
 * that loads the real module on first use:
 * - zlib: the AWS SDK's CRC32 checksum class (for the checksums IAM and STS never ask for) and the Azure HTTP
 *   client's decompression of a compressed reply; the .cjs scripts' gunzip of a lazy chunk;
 * - fs/promises: the AWS SDK's shared config and SSO token files (only the host's credential chain reads them);
 * - assert: https-proxy-agent's checks, only on the proxy's path.
 * A function of the module is a stand-in function that calls the real one (so `typeof zlib.crc32 ===
 * "function"`, which the AWS SDK asks as it starts, loads nothing); anything else (a class, `constants`) is a
 * getter that loads the module when read. The names are the build's Node's; a newer Node's additions are absent.
 */
const LAZY_BUILTINS = ['zlib', 'fs/promises', 'assert'];

/**
 * Stand-in functions that do the work without the module at all. fs/promises' readFile: the AWS SDK reads the
 * shared config and credentials files (~/.aws/config, for settings such as auth_scheme_preference) in every run,
 * and on Node 26 fs/promises loads readline and the REPL's history with it (3.5 ms of CPU, 3.5 MB). A path is
 * read by node:fs's readFile, as a promise: the same bytes, the same errors (ENOENT for a missing file); a
 * FileHandle still goes to the real one.
 */
const STAND_INS: Record<string, Record<string, string>> = {
  'fs/promises': {
    readFile: `function (path, options) {
  if (typeof path !== 'string' && !(path instanceof URL) && !Buffer.isBuffer(path)) return load().readFile.apply(this, arguments);
  return new Promise((ok, fail) => require('node:fs').readFile(path, options, (err, data) => (err ? fail(err) : ok(data))));
}`,
  },
};

export const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.map((m) => m.replace('/', '\\/')).join('|')})$`);
    b.onResolve({ filter }, (args) => {
      const name = args.path.replace(/^node:/, '');
      // The stand-in's own require of the real module.
      if (args.namespace === 'lazy-builtin') return { path: `node:${name}`, external: true };
      return { path: name, namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      const real = createRequire(import.meta.url)(`node:${args.path}`) as Record<string, unknown>;
      const isFunction = (v: unknown) => typeof v === 'function' && !/^[A-Z]/.test((v as { name: string }).name);
      const standIns = STAND_INS[args.path] ?? {};
      const functions = Object.keys(real).filter((k) => isFunction(real[k]) && !Object.hasOwn(standIns, k));
      const getters = Object.keys(real).filter((k) => !isFunction(real[k]));
      return {
        contents: `'use strict';
let real;
const load = () => (real ??= require(${JSON.stringify(`node:${args.path}`)}));
const lazy = ${typeof real === 'function' ? 'function (...a) { return load().apply(this, a); }' : '{}'};
for (const k of ${JSON.stringify(functions)}) lazy[k] = function (...a) { return load()[k].apply(this, a); };
for (const k of ${JSON.stringify(getters)}) Object.defineProperty(lazy, k, { enumerable: true, get: () => load()[k] });
${Object.entries(standIns).map(([k, f]) => `lazy[${JSON.stringify(k)}] = ${f};`).join('\n')}
module.exports = lazy;
`,
        loader: 'js',
      };
    });
  },
};

/**
 * `import util from "node:util"` and `import process from "node:process"` in the packages' ES modules (the Azure
 * SDK's HTTP runtime: its logger, its environment and user-agent probes), bundled as `require`. esbuild bundles a
 * default import of a CommonJS module as a copy of it (`__toESM`), which reads the descriptor of every property,
 * and on Node 26 that makes util and process build each of their lazily made properties: parseArgs, diff,
 * MIMEParams, and with them worker_threads, the assert diff and SIGINT tracing (11 modules, 0.4 MB of peak
 * memory and 1-2 ms in an Azure rotation). The default import is the module object itself, which the require
 * returns. Only a whole-line import statement is rewritten; anything else is left as it is.
 */
export const defaultImportsOfGlobals: Plugin = {
  name: 'default-imports-of-globals',
  setup(b) {
    const statement = /^import (\w+) from "node:(util|process)";$/gm;
    b.onLoad({ filter: /[\\/]node_modules[\\/].*\.m?js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(' from "node:util";') && !text.includes(' from "node:process";')) return undefined;
      if (!statement.test(text)) return undefined;
      return { contents: text.replace(statement, 'const $1 = require("node:$2");'), loader: 'js' };
    });
  },
};

/**
 * The AWS IAM and STS clients import the SDK's default credential chain for when no credentials are given. The
 * scripts always give them credentials (src/targets/aws-iam-access-key/iam.ts `Signer`), and the host's chain is a
 * lazy module of its own (host-credentials.ts), loaded only by a run that signs with it: in a client's chunk (the
 * .cjs scripts, scripts/build.ts) or lazy asset (the executable, scripts/build-binary.ts) the import is a stub that
 * throws, so the other runs do not compile about a third of the AWS code for nothing.
 */
export const noDefaultAwsChain: Plugin = {
  name: 'no-default-aws-chain',
  setup(b) {
    b.onResolve({ filter: /^@aws-sdk\/credential-provider-node$/ }, (args) =>
      /[\\/]node_modules[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]/.test(args.importer) ? { path: args.path, namespace: 'default-aws-chain-stub' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'default-aws-chain-stub' }, () => ({
      contents: 'export const defaultProvider = () => async () => { throw new Error("keeper-rotate gives every AWS client its credentials; the default chain is host-credentials.ts"); };',
      loader: 'js',
    }));
  },
};

/**
 * MSAL signs a client assertion with jsonwebtoken (and its semver, jws, jwa, lodash helpers) only for a
 * certificate credential; keeper-rotate signs in to Entra with client secrets (src/targets/azure-app-secret/
 * graph.ts, ClientSecretCredential). MSAL imports it as it starts, so every Azure run started those modules for
 * nothing: in MSAL's import it is a stub whose sign() throws.
 */
export const noJsonwebtoken: Plugin = {
  name: 'no-jsonwebtoken',
  setup(b) {
    b.onResolve({ filter: /^jsonwebtoken$/ }, (args) => (/[\\/]node_modules[\\/]@azure[\\/]msal-node[\\/]/.test(args.importer) ? { path: args.path, namespace: 'jsonwebtoken-stub' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'jsonwebtoken-stub' }, () => ({
      contents: 'export default { sign() { throw new Error("keeper-rotate signs in to Entra with a client secret; a certificate assertion (jsonwebtoken) is not bundled"); } };',
      loader: 'js',
    }));
  },
};

/** The plugins of a bundle that holds an SDK (a .cjs script's lazy chunk, an executable's lazy asset). */
export const SDK_PLUGINS: Plugin[] = [lazyBuiltins, defaultImportsOfGlobals, noDefaultAwsChain, noJsonwebtoken];
