// Process glue for the report, as `npm run report` and `keeper-rotate report` start it.
import { runReport } from './command.js';

export function startReport(argv: readonly string[]): void {
  runReport({ argv, stdout: process.stdout, stderr: process.stderr, env: process.env, platform: process.platform }).then((code) => {
    // Idle keep-alive connections (--check's clients) would hold the process open; the report is written.
    process.stdout.write('', () => process.exit(code));
  });
}
