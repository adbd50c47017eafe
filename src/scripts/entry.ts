// Process glue shared by every script: wire runScript to the real process, and make sure the process ends.
import { setFlagsFromString } from 'node:v8';
import { DEFAULT_DEADLINE_SECONDS, HARD_STOP_GRACE_MS, runScript, type ScriptDefinition } from '../cli/main.js';
import { currentStep } from '../state/journal.js';

export function startScript(script: ScriptDefinition): void {
  // Node's fetch (Graph, Wiz) parses HTTP with a WebAssembly build of llhttp. V8's optimizing tier compiles the
  // parser's one huge function in the background, which costs ~25 MB of peak memory in a run that parses a dozen
  // small replies; the baseline tier parses them as well. Only WebAssembly compilation reads this flag.
  setFlagsFromString('--liftoff-only');
  const seconds = Number(process.env.KEEPER_ROTATE_DEADLINE_SECONDS) || DEFAULT_DEADLINE_SECONDS;
  // A client call with no timeout of its own must not hold the gateway's slot forever. Ending here is safe at
  // any point: the pipeline never leaves the record without a working credential between two steps.
  const hardStop = setTimeout(() => {
    // The exit code tells the truth from the journal: before anything was made (or with only this run's write
    // check open) the record's credential is untouched; past that, something of this run's may remain, or (in
    // place) the target may have switched already, and the next run settles it from the journal.
    const step = currentStep();
    const untouched = !step || step.phase === 'preparing';
    const where = step ? ` at "${step.phase}"${step.credentialId ? ` with ${step.credentialId}` : ''}; the next run settles it from the journal` : '';
    process.stderr.write(`keeper-rotate: DEADLINE_EXCEEDED: the run did not finish within ${seconds} s; stopped${where}\n`);
    process.exit(untouched ? 3 : 5);
  }, seconds * 1000 + HARD_STOP_GRACE_MS);
  hardStop.unref();
  runScript(script, {
    argv: process.argv.slice(2),
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    platform: process.platform,
  }).then((code) => {
    // Idle keep-alive connections would hold the process open for seconds; the work is done.
    process.stdout.write('', () => process.exit(code));
  });
}
