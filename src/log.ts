// Step logging for the gateway's log: one line per step on stderr (human-readable, or JSON lines with
// KEEPER_ROTATE_LOG=json), and the final one-line summary on stdout. Every line goes through `redact`, so a
// secret that slipped into a message (an SDK error quoting a request body) is scrubbed before it is written,
// and then through `escapeControls`, so a value from outside (a record's title or type, a Wiz account name, an
// error body) cannot drive the terminal or the log viewer that shows the gateway's log.
import { redact } from './secret.js';

/**
 * What a line of output must never carry raw: C0 controls (line breaks and tabs included: a CR in a record's
 * title would let it overwrite the line it is on, an LF forge a line of its own), DEL, C1 controls (U+0085 is a
 * line break, U+009B a one-byte CSI on some terminals), and the characters that reorder or break text without
 * showing: the bidi embeddings, overrides and isolates, the implicit marks, and the Unicode line and paragraph
 * separators.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Writes each such character as a visible escape (`\u001b`, `\n`), never dropping one: whoever reads the log
 * sees that the value held it. Applied to whole finished lines at the output boundary; the result is still valid
 * JSON for a JSON line (JSON.stringify leaves C1 and bidi characters raw, and `\uXXXX` is JSON's own escape),
 * and applying it twice changes nothing.
 */
export function escapeControls(line: string): string {
  return line.replace(CONTROL, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export type LogFormat = 'text' | 'json';
export type Level = 'info' | 'warn' | 'error';

export interface Writable {
  write(chunk: string): unknown;
}

export interface LoggerOptions {
  script: string;
  format: LogFormat;
  stderr: Writable;
  stdout: Writable;
  now?: () => Date;
}

export type LogFields = Record<string, string | number | boolean | undefined | null | readonly string[]>;

export class Logger {
  readonly #o: LoggerOptions;

  constructor(options: LoggerOptions) {
    this.#o = options;
  }

  get format(): LogFormat {
    return this.#o.format;
  }

  #line(stream: Writable, level: Level | 'result', step: string, raw: string, fields: LogFields = {}): void {
    // Scrubbed before JSON escapes them too: a message that quotes a JSON body holds a secret in escaped form,
    // and escaping it once more would hide it from `redact` on the finished line.
    const message = redact(raw);
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) clean[k] = typeof v === 'string' ? redact(v) : Array.isArray(v) ? v.map(redact) : v;
    let line: string;
    if (this.#o.format === 'json') {
      const time = (this.#o.now ?? (() => new Date()))().toISOString();
      line = JSON.stringify({ time, level, script: this.#o.script, step, message, ...clean });
    } else {
      const extra = Object.entries(clean)
        .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') || '-' : String(v)}`)
        .join(' ');
      const tag = level === 'info' || level === 'result' ? '' : `${level.toUpperCase()} `;
      line = `${this.#o.script}: ${tag}${step}: ${message}${extra ? ` (${extra})` : ''}`;
    }
    // Scrub first: a secret with a line break in it is only recognisable before the break is escaped.
    stream.write(escapeControls(redact(line)) + '\n');
  }

  info(step: string, message: string, fields?: LogFields): void {
    this.#line(this.#o.stderr, 'info', step, message, fields);
  }

  warn(step: string, message: string, fields?: LogFields): void {
    this.#line(this.#o.stderr, 'warn', step, message, fields);
  }

  error(step: string, message: string, fields?: LogFields): void {
    this.#line(this.#o.stderr, 'error', step, message, fields);
  }

  /** The one summary line on stdout that says how the run ended. */
  result(outcome: string, message: string, fields?: LogFields): void {
    this.#line(this.#o.stdout, 'result', outcome, message, fields);
  }
}
