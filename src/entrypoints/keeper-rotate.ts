// The keeper-rotate executable (`npm run build:binary`): one program for every target, run by the wrappers in
// packaging/wrappers. The scripts are the same definitions the per-target .cjs bundles run.
import { chooseTarget, executableInvocation, PROGRAM, REPORT_COMMAND } from '../cli/multi-call.js';
import { TARGETS } from '../cli/targets.js';
import { ExitCode, RotateError, describe } from '../errors.js';
import { escapeControls, Logger } from '../log.js';
import { redact } from '../secret.js';

// A Node single executable's argv is [its path, the name it was run by, ...arguments], as under `node`.
const argv = process.argv.slice(2);
// `report` is a command, not a target: the fleet report (src/report), loaded only when asked for.
const choice = argv[0] === REPORT_COMMAND ? undefined : chooseTarget(argv, TARGETS);
if (!choice) {
  import('../report/process.js').then(
    ({ startReport }) => startReport(argv.slice(1)),
    (err: unknown) => answer(new RotateError('INTERNAL', `could not load the report: ${describe(err)}`, { cause: err }), ExitCode.Internal),
  );
} else if (choice.kind === 'discover') {
  // An admin's command, not a gateway's: loaded only when asked for, like a target.
  import('../discover/main.js').then(
    ({ runDiscover }) => runDiscover(choice.argv, { env: process.env, stdout: process.stdout, stderr: process.stderr }).then((r) => (process.exitCode = r.exitCode)),
    (err: unknown) => answer(new RotateError('INTERNAL', `could not load discover: ${describe(err)}`, { cause: err }), ExitCode.Internal),
  );
} else if (choice.kind === 'run') {
  const { name, entry, argv } = choice;
  // The process glue too (it loads the Keeper SDK): nothing but the choice runs before a target is chosen.
  Promise.all([import('./entry.js'), entry.load()]).then(
    ([{ startScript }, script]) => startScript(script, { argv, invocation: executableInvocation(name) }),
    (err: unknown) => answer(new RotateError('INTERNAL', `could not load the ${name} script: ${describe(err)}`, { cause: err }), ExitCode.Internal),
  );
} else {
  if (choice.stdout) process.stdout.write(choice.stdout);
  if (choice.error) answer(choice.error, choice.exitCode);
  process.exitCode = choice.exitCode;
}

/** A failure before any script ran, reported as a script reports one: the coded line, then the summary. */
function answer(error: RotateError, exitCode: ExitCode): void {
  process.stderr.write(escapeControls(redact(error.toLine())) + '\n');
  const log = new Logger({ script: PROGRAM, format: process.env.KEEPER_ROTATE_LOG === 'json' ? 'json' : 'text', stderr: process.stderr, stdout: process.stdout });
  log.result('failed', error.code, { exit: exitCode });
  process.exitCode = exitCode;
}
