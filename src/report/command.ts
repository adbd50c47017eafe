// `keeper-rotate report`: one Keeper read of every record shared with the gateway's application, a row for each
// record one of our targets manages, optionally a read-only check on each target, then one format on stdout and
// an exit code that a pipeline or a cron can gate on (verdict.ts).
import { deadlineFrom } from '../cli/main.js';
import { ExitCode, RotateError, describe, isRotateError } from '../errors.js';
import { useProxyEnvironment } from '../http/proxy.js';
import { loadGatewayConfig } from '../keeper/config.js';
import { KeeperVault, type VaultRecord } from '../keeper/vault.js';
import { Logger, type Writable, escapeControls } from '../log.js';
import { redact } from '../secret.js';
import { VERSION } from '../version.js';
import { PAM_CONFIGURATION_TYPE, checkRows } from './check.js';
import { render } from './format/render.js';
import { buildRow, type ReportRow, sortRows, worst } from './model.js';
import { REPORT_HELP, parseReportArgs } from './options.js';
import { summarise } from './verdict.js';

export const REPORT_NAME = 'keeper-rotate report';

export interface ReportIo {
  argv: readonly string[];
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  now?: () => Date;
  /** Called with the endpoint of each Keeper request (the bench counts them). */
  onKeeperRequest?: (endpoint: string) => void;
}

/** The PAM configurations --check may take admin credentials from: those named, in order, else every one shared. */
function configurations(records: readonly VaultRecord[], named: readonly string[]): VaultRecord[] {
  if (named.length === 0) return records.filter((r) => PAM_CONFIGURATION_TYPE.test(r.type));
  return named.map((uid) => {
    const found = records.find((r) => r.uid === uid);
    if (!found) throw new RotateError('RECORD_NOT_FOUND', `--config ${uid} is not shared with the gateway's application`);
    return found;
  });
}

/** Runs the report and returns its exit code; never throws. */
export async function runReport(io: ReportIo): Promise<number> {
  const log = new Logger({ script: REPORT_NAME, format: io.env.KEEPER_ROTATE_LOG === 'json' ? 'json' : 'text', stderr: io.stderr, stdout: io.stderr });
  let vault: KeeperVault | undefined;
  try {
    const options = parseReportArgs(io.argv);
    if (options.help) {
      io.stdout.write(`${REPORT_NAME} ${VERSION}\n\n${REPORT_HELP}`);
      return ExitCode.Ok;
    }
    if (options.version) {
      io.stdout.write(`${REPORT_NAME} ${VERSION}\n`);
      return ExitCode.Ok;
    }
    const deadline = deadlineFrom(io.env);
    useProxyEnvironment(io.env);
    const config = loadGatewayConfig({ env: io.env, platform: io.platform });
    vault = new KeeperVault(config, { deadline, ...(io.onKeeperRequest ? { onRequest: io.onKeeperRequest } : {}) });
    const records = await vault.fetchAll();
    vault.close();
    vault = undefined;
    const now = (io.now ?? (() => new Date()))();
    const modelOptions = { now, warnDays: options.warnDays, failDays: options.failDays, maxKeyAgeDays: options.maxKeyAgeDays };
    const rows: ReportRow[] = [];
    for (const record of records) {
      const row = buildRow(record, modelOptions);
      if (row) rows.push(row);
    }
    if (options.check) {
      const byUid = new Map(records.map((r) => [r.uid, r]));
      await checkRows(rows, byUid, { env: io.env, log, deadline, configurations: configurations(records, options.configs), concurrency: options.concurrency });
      for (const row of rows) row.status = worst(row.problems);
    }
    sortRows(rows);
    const summary = summarise(rows, options.check);
    io.stdout.write(render(options.format, { rows, summary, generatedAt: now, options: { check: options.check, warnDays: options.warnDays, failDays: options.failDays, maxKeyAgeDays: options.maxKeyAgeDays } }));
    return summary.exitCode;
  } catch (err) {
    const error = isRotateError(err) ? err : new RotateError('INTERNAL', `unexpected error: ${describe(err)}`, { cause: err });
    io.stderr.write(escapeControls(redact(error.toLine())) + '\n');
    return error.exitCode;
  } finally {
    vault?.close();
  }
}
