// The report's output formats, one module each; all render the same rows and summary.
import type { ReportRow } from '../model.js';
import type { Summary } from '../verdict.js';
import { renderCsv } from './csv.js';
import { renderHtml } from './html.js';
import { renderJson } from './json.js';
import { renderTable } from './table.js';

export const FORMATS = ['table', 'json', 'csv', 'html'] as const;
export type Format = (typeof FORMATS)[number];

/** The options a report was made with, as the JSON and HTML formats state them (no secret among them). */
export interface StatedOptions {
  check: boolean;
  warnDays: number;
  failDays: number;
  maxKeyAgeDays: number | undefined;
}

export interface RenderInput {
  rows: readonly ReportRow[];
  summary: Summary;
  generatedAt: Date;
  options: StatedOptions;
}

export function render(format: Format, input: RenderInput): string {
  switch (format) {
    case 'table':
      return renderTable(input);
    case 'json':
      return renderJson(input);
    case 'csv':
      return renderCsv(input);
    case 'html':
      return renderHtml(input);
  }
}
