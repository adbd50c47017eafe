// The JSON format: the whole model, for scripts and dashboards. JSON.stringify escapes the C0 controls inside
// strings; the C1, bidi and line-separator characters it leaves raw are written as \uXXXX too (JSON's own
// escape, so the document means the same), and a `cat` of the file cannot reorder what a terminal shows.
import type { RenderInput } from './render.js';

const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function renderJson({ rows, summary, generatedAt, options }: RenderInput): string {
  const body = { generatedAt: generatedAt.toISOString(), options, summary, records: rows };
  // Absent values are null, so every record has every key.
  return JSON.stringify(body, (_key, v: unknown) => (v === undefined ? null : v), 2).replace(RAW_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n';
}
