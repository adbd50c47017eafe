// Date-times as the sandboxed services accept them (Graph's DateTimeOffset, IAM's and Wiz's ISO 8601): one parser
// for all three, so they agree on what a valid date is.

/**
 * ISO 8601 with a zone (fractions allowed), or a Date; undefined when it is neither. Date.parse keeps only
 * milliseconds: Graph's seven fraction digits round-trip because the extra four are zeros here.
 */
export function parseDateTime(value: unknown): number | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.getTime();
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
