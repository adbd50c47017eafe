// The keeper-rotate executable carries every target's script, and its first argument picks one:
// `keeper-rotate aws-iam-access-key --dry-run`. Picking is all that runs before a target is chosen: --help,
// --version and a wrong target load no SDK, because each target's script is loaded by `load()` only once it is
// chosen (the bundler keeps a dynamically imported module unevaluated until then).
import { ExitCode, RotateError } from '../errors.js';
import { VERSION } from '../version.js';
import type { Invocation, ScriptDefinition } from './main.js';

export const PROGRAM = 'keeper-rotate';
/** The first argument that runs the fleet report (src/report) instead of a target's script. */
export const REPORT_COMMAND = 'report';

export interface TargetEntry {
  /** What it rotates, for the target list in --help. */
  title: string;
  load(): Promise<ScriptDefinition>;
}

export type Choice =
  /** Run this target's script with the arguments after its name. */
  | { kind: 'run'; name: string; entry: TargetEntry; argv: string[] }
  /** `keeper-rotate discover ...`: list what can be rotated and emit records for it (src/discover). */
  | { kind: 'discover'; argv: string[] }
  /** Answered without a target: --help or --version (stdout), or a usage error (exit 2). */
  | { kind: 'answered'; exitCode: ExitCode; stdout?: string; error?: RotateError };

/** How a target of the executable is run, for its --help: through its wrapper script, which the record carries. */
export function executableInvocation(name: string): Invocation {
  return {
    command: `${PROGRAM} ${name}`,
    attach: `attach\nits wrapper script, ${name}.sh, to a PAM User record with no command, and mark the record\n"Run PAM scripts only". The wrapper runs this program.`,
  };
}

export function chooseTarget(argv: readonly string[], targets: Readonly<Record<string, TargetEntry>>): Choice {
  const [first, ...rest] = argv;
  const names = Object.keys(targets);
  const usage = (message: string): Choice => ({
    kind: 'answered',
    exitCode: ExitCode.Rejected,
    error: new RotateError('USAGE', `${message}; the first argument names the target: ${names.join(', ')} (see ${PROGRAM} --help)`),
  });
  if (first === undefined) return usage('no target given');
  if (first === '--help' || first === '-h') return { kind: 'answered', exitCode: ExitCode.Ok, stdout: helpText(targets) };
  if (first === '--version' || first === '-v') return { kind: 'answered', exitCode: ExitCode.Ok, stdout: `${PROGRAM} ${VERSION}\n` };
  if (first === 'discover') return { kind: 'discover', argv: rest };
  const entry = Object.hasOwn(targets, first) ? targets[first] : undefined;
  // Never echo an unknown argument in full: someone may have pasted a secret on the command line.
  const shown = JSON.stringify(first.slice(0, 20));
  if (!entry) return usage(first.startsWith('-') ? `unknown argument ${shown} before the target` : `unknown target ${shown}`);
  return { kind: 'run', name: first, entry, argv: rest };
}

function helpText(targets: Readonly<Record<string, TargetEntry>>): string {
  const width = Math.max(...Object.keys(targets).map((n) => n.length)) + 3;
  const list = Object.entries(targets).map(([name, t]) => `  ${name.padEnd(width)}${t.title}`);
  return `${PROGRAM} ${VERSION}: Keeper Gateway post-rotation scripts in one program that needs no Node.js.

Usage: ${PROGRAM} TARGET [--dry-run] [--log-format=json] < gateway-input
       ${PROGRAM} TARGET --doctor --record RECORD_UID [--config PAM_CONFIG_UID]
       ${PROGRAM} TARGET --doctor < gateway-input
       ${PROGRAM} TARGET --help | --version
       ${PROGRAM} discover aws|azure|wiz [--config PAM_CONFIG_UID] [--create-in FOLDER_UID] [--dry-run]
       ${PROGRAM} --help | --version
       ${PROGRAM} ${REPORT_COMMAND} [--format table|json|csv|html] [--check]   (see ${PROGRAM} ${REPORT_COMMAND} --help)

Targets:
${list.join('\n')}

The gateway runs a target through its wrapper script (TARGET.sh), attached to the PAM User record with no
command; the wrapper runs $KEEPER_ROTATE_BIN, else /opt/keeper-rotate/bin/${PROGRAM}, else ${PROGRAM} on the
PATH. "${PROGRAM} TARGET --help" lists the target's record fields, settings and environment.

Exit codes: 0 done (or nothing to do), 1 internal error, 2 rejected before any change, 3 failed and the
record still holds its previous credential, 4 rotated but cleanup unfinished, 5 needs attention.
Every error line starts with "keeper-rotate: CODE:"; the README explains each code.
`;
}
