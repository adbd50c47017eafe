// Secrets travel in a type that cannot reach a log by accident: string conversion, JSON, util.inspect and
// console.log all print a placeholder. The value comes out only through `reveal()`, at the one call that hands
// it to a client library. Every secret is also registered with `redact()`, which scrubs it from any text we
// print, because client libraries put request bodies into their error messages.
import { inspect } from 'node:util';

const PLACEHOLDER = '[secret]';
const known = new Set<string>();

/** Secrets shorter than this are not scrubbed from text: they would match ordinary words. */
const MIN_SCRUB_LENGTH = 6;

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    if (value.length >= MIN_SCRUB_LENGTH) {
      known.add(value);
      // Also the forms a secret takes inside a request body or URL.
      const encoded = encodeURIComponent(value);
      if (encoded !== value) known.add(encoded);
      known.add(Buffer.from(value).toString('base64'));
    }
  }

  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
  }

  equals(other: Secret | undefined): boolean {
    return other !== undefined && other.#value === this.#value;
  }

  toString(): string {
    return PLACEHOLDER;
  }

  toJSON(): string {
    return PLACEHOLDER;
  }

  [inspect.custom](): string {
    return PLACEHOLDER;
  }
}

/** Replaces every registered secret in `text` with a placeholder. */
export function redact(text: string): string {
  let out = text;
  for (const s of known) if (out.includes(s)) out = out.split(s).join(PLACEHOLDER);
  return out;
}
