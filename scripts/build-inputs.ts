// What a build reads, so that `npm run bench` rebuilds dist/ exactly when something it is built from changed.
// The inputs are found, not listed: a build script's own local modules are followed from its imports, so a module
// split out of a build script (as scripts/bundle-options.ts was) cannot be forgotten.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** What every build reads besides its script: the sources and the dependency tree. */
const SHARED_INPUTS = ['src', 'package.json', 'package-lock.json'];

/**
 * `script` and every module it imports by a relative path, transitively, except the sources under `root`/src
 * (an input as a whole already), and the files they name as './scripts/NAME.js' (esbuild's `inject` and `alias`
 * take paths from the root). Paths are joined to `script`'s as given.
 */
export function localModules(script: string, root = '.'): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, spec] of text.matchAll(/\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
      // The sources import each other by their .js names; the file on disk is the .ts.
      const target = join(dirname(file), spec!.replace(/\.js$/, '.ts'));
      if (relative(join(root, 'src'), target).startsWith('..') && existsSync(target)) visit(target);
    }
    // Files that esbuild options name by a path from the project's root (an `inject`, an `alias`), not imported.
    for (const [, path] of text.matchAll(/['"](\.\/scripts\/[^'"]+\.[cm]?js)['"]/g)) {
      const target = join(root, path!);
      if (existsSync(target)) seen.add(target);
    }
  };
  visit(script);
  return [...seen];
}

/** Every file and folder the build by `script` (scripts/build.ts, scripts/build-binary.ts) is made from. */
export function buildInputs(script: string, root = '.'): string[] {
  return [...SHARED_INPUTS.map((p) => join(root, p)), ...localModules(join(root, script), root)];
}

/** The newest modification time of a file, or of any file under a folder; 0 when it does not exist. */
export function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((n) => newestMtime(join(path, n))));
}

/** True when an output is missing, or an input changed after the oldest output was written. */
export function isStale(outputs: string[], inputs: string[]): boolean {
  if (!outputs.every((o) => existsSync(o))) return true;
  const built = Math.min(...outputs.map((o) => statSync(o).mtimeMs));
  return Math.max(...inputs.map(newestMtime)) >= built;
}
