// Runs the report in this process against a sandbox, as `keeper-rotate report` runs it, capturing its output.
import { runReport } from '../../src/report/command.js';

export interface ReportResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function report(env: Record<string, string>, argv: string[]): Promise<ReportResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runReport({
    argv,
    stdout: { write: (c: string) => stdout.push(c) },
    stderr: { write: (c: string) => stderr.push(c) },
    env: { ...process.env, ...env },
    platform: process.platform,
  });
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}
