// Process glue shared by every script: wire runScript to the real process, and make sure the process ends.
import { DEFAULT_DEADLINE_SECONDS, HARD_STOP_GRACE_MS, type Invocation, runScript, type ScriptDefinition } from '../cli/main.js';
import { escapeControls } from '../log.js';
import { type JournalEntry, currentStep, rotationFinalized } from '../state/journal.js';

/** The script's own arguments and how it was invoked; a .cjs bundle's are the process's (the defaults). */
export interface Launch {
  argv: readonly string[];
  invocation?: Invocation;
}

export function startScript(script: ScriptDefinition, launch: Launch = { argv: process.argv.slice(2) }): void {
  const seconds = Number(process.env.KEEPER_ROTATE_DEADLINE_SECONDS) || DEFAULT_DEADLINE_SECONDS;
  // A client call with no timeout of its own must not hold the gateway's slot forever. Ending here is safe at
  // any point: the pipeline never leaves the record without a working credential between two steps.
  const hardStop = setTimeout(() => {
    const verdict = hardStopVerdict(currentStep(), seconds, rotationFinalized());
    // Written past the logger: the credential ID came from the target, so it is escaped like any logged value.
    process.stderr.write(escapeControls(verdict.line) + '\n');
    process.exit(verdict.exitCode);
  }, seconds * 1000 + HARD_STOP_GRACE_MS);
  hardStop.unref();
  runScript(script, {
    argv: launch.argv,
    ...(launch.invocation ? { invocation: launch.invocation } : {}),
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

/**
 * The hard stop's exit code, from the journal: before anything was made (or with only this run's write check
 * open) the record's credential is untouched (3); past that, something of this run's may remain, or (in place)
 * the target may have switched already (5), and the next run settles it from the journal.
 */
export function hardStopVerdict(step: JournalEntry | undefined, seconds: number, finalized = false): { exitCode: 3 | 4 | 5; line: string } {
  // Past finalize the record holds the new, verified credential: only retiring (or adopting) was cut short.
  if (finalized && !step) return { exitCode: 4, line: `keeper-rotate: DEADLINE_EXCEEDED: the run did not finish within ${seconds} s; the new credential was saved, verified and finalized, and retiring old ones did not finish (the next run does)` };
  const untouched = !step || step.phase === 'preparing';
  const where = step ? ` at "${step.phase}"${step.credentialId ? ` with ${step.credentialId}` : ''}; the next run settles it from the journal` : '';
  return { exitCode: untouched ? 3 : 5, line: `keeper-rotate: DEADLINE_EXCEEDED: the run did not finish within ${seconds} s; stopped${where}` };
}
