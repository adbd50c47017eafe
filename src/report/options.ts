// The report's command line. An unknown argument is a USAGE error that quotes at most 20 characters of it, as
// the scripts do: someone may have pasted a secret on the command line.
import { RotateError } from '../errors.js';
import { isRecordUid } from '../gateway/input.js';
import { FORMATS, type Format } from './format/render.js';

export interface ReportOptions {
  help: boolean;
  version: boolean;
  format: Format;
  check: boolean;
  concurrency: number;
  /** PAM configuration UIDs whose admin credentials --check may use, in order; empty: every one shared. */
  configs: string[];
  warnDays: number;
  failDays: number;
  maxKeyAgeDays: number | undefined;
}

export const DEFAULT_CONCURRENCY = 8;
export const MAX_CONCURRENCY = 32;
export const DEFAULT_WARN_DAYS = 30;

function integer(flag: string, raw: string | undefined, min: number, max: number): number {
  if (raw === undefined || !/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new RotateError('USAGE', `${flag} needs a whole number from ${min} to ${max}; see --help`);
  }
  return Number(raw);
}

export function parseReportArgs(argv: readonly string[]): ReportOptions {
  const o: ReportOptions = { help: false, version: false, format: 'table', check: false, concurrency: DEFAULT_CONCURRENCY, configs: [], warnDays: DEFAULT_WARN_DAYS, failDays: 0, maxKeyAgeDays: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = /^(--[a-z-]+)=(.*)$/s.exec(arg);
    const flag = eq ? eq[1]! : arg;
    const value = () => (eq ? eq[2] : argv[++i]);
    switch (flag) {
      case '--help':
      case '-h':
        o.help = true;
        break;
      case '--version':
      case '-v':
        o.version = true;
        break;
      case '--check':
        o.check = true;
        break;
      case '--format': {
        const f = value();
        if (!FORMATS.includes(f as Format)) throw new RotateError('USAGE', `--format needs one of ${FORMATS.join(', ')}`);
        o.format = f as Format;
        break;
      }
      case '--concurrency':
        o.concurrency = integer(flag, value(), 1, MAX_CONCURRENCY);
        break;
      case '--warn-days':
        o.warnDays = integer(flag, value(), 0, 3650);
        break;
      case '--fail-days':
        o.failDays = integer(flag, value(), 0, 3650);
        break;
      case '--max-key-age-days':
        o.maxKeyAgeDays = integer(flag, value(), 1, 3650);
        break;
      case '--config': {
        const uid = value();
        if (!isRecordUid(uid)) throw new RotateError('USAGE', '--config needs a PAM configuration record UID (22 URL-safe base64 characters)');
        o.configs.push(uid);
        break;
      }
      default:
        throw new RotateError('USAGE', `unknown argument ${JSON.stringify(arg.slice(0, 20))}; see --help`);
    }
  }
  if (o.configs.length > 0 && !o.check) throw new RotateError('USAGE', '--config names the PAM configurations --check signs in with; give --check too');
  return o;
}

export const REPORT_HELP = `Usage: keeper-rotate report [--format table|json|csv|html] [--check [--concurrency N] [--config UID]...]
                            [--warn-days N] [--fail-days N] [--max-key-age-days N]

Reports every PAM User record shared with the gateway's application that keeper-rotate manages (AWS IAM access
keys, AWS ECR pull secrets, Azure app client secrets, Wiz service accounts), in one Keeper request: target,
credential, created and expires, age, days left, and how the last rotation ended. Reads only; never prints a
secret.

  --format F            table (default), json, csv, or html (one self-contained page with an expiry chart)
  --check               also ask each target, read-only, whether it agrees: the record's credential is still
                        there and nothing is orphaned (signs in with the admin credentials a run would use)
  --concurrency N       records checked at once with --check (default ${DEFAULT_CONCURRENCY}, at most ${MAX_CONCURRENCY})
  --config UID          with --check: a PAM configuration to take admin credentials from (repeatable, tried in
                        order); default: every PAM configuration shared with the application
  --warn-days N         a credential expiring within N days is "expiring" (default ${DEFAULT_WARN_DAYS})
  --fail-days N         a credential expiring within N days counts as expired for the exit code (default 0)
  --max-key-age-days N  AWS keys never expire: count one as expiring N days after its CreateDate

Environment: KEEPER_GATEWAY_CONFIG or GATEWAY_CONFIG (the gateway's KSM config), KEEPER_ROTATE_DEADLINE_SECONDS
and KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS, the proxy variables, and with --check each target's endpoint and
allow-list variables, as for a run.

Exit codes: 0 nothing found; 1 internal error; 2 usage or config error; 3 Keeper could not be read;
8 + the sum of what was found: 1 something expired, 2 a last rotation failed (exit other than 0),
4 a target disagrees, a check could not finish, or a record cannot be read. So 9 = expired, 13 = expired and
disagreeing; any code of 8 or more means the report was made.
`;
