// `keeper-rotate discover` run in the test's own process (as the executable runs it), with its output captured.
import { type DiscoverResult, runDiscover } from '../../src/discover/main.js';

export interface DiscoverRun extends DiscoverResult {
  stdout: string;
  stderr: string;
}

/** Runs discover with `args` in the given environment (the sandbox's, over this process's). */
export async function discoverInProcess(args: string[], env: Record<string, string | undefined>): Promise<DiscoverRun> {
  let stdout = '';
  let stderr = '';
  const r = await runDiscover(args, {
    env: { ...process.env, ...env },
    stdout: { write: (c: string) => (stdout += c) },
    stderr: { write: (c: string) => (stderr += c) },
  });
  return { ...r, stdout, stderr };
}
