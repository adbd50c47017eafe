// Inside the keeper-rotate executable, each target's script (its definition, the process glue and the SDKs it
// uses) is an asset of its own, apart from the main script that answers --help and --version and picks the
// target. scripts/build-binary.ts links the main script's `import()` of a target (src/cli/targets.ts) and of the
// glue (src/entrypoints/keeper-rotate.ts) to this module instead of bundling them in.
//
// Why not one bundle: V8's code cache for a single executable covers only what compiling the main script compiles,
// its top-level code; every function a rotation then runs was still parsed and compiled at run time, and every
// start paid for deserializing all three targets' SDKs. Here the build runs each target's asset through two
// rotations on the sandbox and keeps V8's code cache from the end of them (`targets/NAME.cache`), so the functions
// a rotation runs start compiled, and a run deserializes only its own target's.
import { getRawAsset } from 'node:sea';
import { debuglog } from 'node:util';
import { Script } from 'node:vm';
import type { ScriptDefinition } from './main.js';
import type { Launch } from '../entrypoints/entry.js';

/** What a target's asset exports: src/targets/<name>/script.ts's definition and src/entrypoints/entry.ts's glue. */
export interface TargetAsset {
  script: ScriptDefinition;
  startScript(script: ScriptDefinition, launch?: Launch): void;
}

/** The asset keys of a target: its script, a CommonJS function expression, and the code cache the build made. */
export const assetKeys = (name: string) => ({ source: `targets/${name}.js`, cache: `targets/${name}.cache` });

/** `NODE_DEBUG=keeper-rotate` says whether V8 took each code cache (a rejected one costs time, never behaviour). */
const debug = debuglog('keeper-rotate');
const loaded = new Map<string, unknown>();

export function loadTarget(name: string): TargetAsset {
  return loadAsset<TargetAsset>(name);
}

/**
 * Any asset built as a target's is (a CommonJS function expression, with or without a code cache): a target's
 * script, a command such as the fleet report (`report`, exporting `startReport`), or a module that a target's
 * asset imports only when a run needs it (scripts/build-binary.ts LAZY_ASSETS), given a `req` that hands it the
 * importing asset's own modules.
 */
export function loadAsset<T>(name: string, req: (id: string) => unknown = require): T {
  const done = loaded.get(name);
  if (done) return done as T;
  const keys = assetKeys(name);
  // The build keeps every asset ASCII (esbuild escapes the rest), so its bytes are the string's one-byte
  // characters: copied as they are, where a UTF-8 decode of 2 MB takes 3-4 ms.
  const source = Buffer.from(getRawAsset(keys.source) as ArrayBuffer).toString('latin1');
  let cachedData: Buffer | undefined;
  try {
    // Not copied: the cache is only read, where getAsset would copy it first.
    cachedData = Buffer.from(getRawAsset(keys.cache) as ArrayBuffer);
  } catch {
    // Cross-built executables carry none: a code cache is valid only for the V8 and CPU that made it.
  }
  const script = new Script(source, { filename: keys.source, ...(cachedData ? { cachedData } : {}) });
  debug('%s: code cache %s', name, cachedData ? (script.cachedDataRejected ? 'rejected' : 'accepted') : 'absent');
  const module = { exports: {} as T };
  // Built-in modules only, as for the main script: the asset bundles everything else.
  (script.runInThisContext() as (exports: object, req: (id: string) => unknown, module: object) => void)(module.exports as object, req, module);
  loaded.set(name, module.exports);
  return module.exports;
}
