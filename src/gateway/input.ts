// What the Keeper Gateway hands a PAM script: one base64 line on stdin holding a JSON object. Everything is
// decoded and checked here, before any network call, so bad input touches nothing. Error messages name the
// key that is wrong and never echo a value: `newPassword`, `oldPassword` and `records` hold secrets.
import { RotateError } from '../errors.js';
import { Secret } from '../secret.js';

export const MAX_INPUT_BYTES = 1024 * 1024;

/** A record dictionary from `records`: `uid`, `title`, and each field keyed by its label (else its type). */
export interface GatewayRecord {
  uid: string;
  title: string | undefined;
  fields: Readonly<Record<string, unknown>>;
}

export interface GatewayInput {
  userRecordUid: string;
  providerRecordUid: string | undefined;
  resourceRecordUid: string | undefined;
  user: string | undefined;
  newPassword: Secret | undefined;
  oldPassword: Secret | undefined;
  records: GatewayRecord[];
}

/** Keeper record UIDs are 16 random bytes in URL-safe base64 without padding. */
const UID = /^[A-Za-z0-9_-]{22}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

export function isRecordUid(value: unknown): value is string {
  return typeof value === 'string' && UID.test(value);
}

export interface ReadOptions {
  /** Most bytes accepted; more is INPUT_TOO_LARGE, refused without buffering them. */
  limit?: number;
  /** Longest wait for the next bytes (or the end) before INPUT_TIMEOUT; unset: no bound. */
  idleMs?: number;
}

/**
 * Reads all of stdin. The gateway writes one line and closes the pipe at once, so a terminal (someone started
 * the script by hand) or a pipe that stays silent is refused straight away rather than left to hang until
 * the deadline, holding the gateway's slot and giving no hint why.
 */
export async function readAll(stream: AsyncIterable<Buffer | string>, options: ReadOptions = {}): Promise<Buffer> {
  const { limit = MAX_INPUT_BYTES, idleMs } = options;
  if ((stream as { isTTY?: unknown }).isTTY === true) {
    throw new RotateError('INPUT_NOT_PIPED', 'stdin is a terminal, not a pipe: the gateway pipes one base64 line into the script (see --help)');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const it = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await nextWithin(it, idleMs);
      if (next.done) break;
      const buf = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      size += buf.length;
      if (size > limit) throw new RotateError('INPUT_TOO_LARGE', `gateway input is larger than ${limit} bytes`);
      chunks.push(buf);
    }
  } catch (err) {
    // Stop reading. An iterator's return() waits behind the read still pending, so a stream is destroyed.
    const destroy = (stream as { destroy?: () => void }).destroy;
    if (typeof destroy === 'function') destroy.call(stream);
    else it.return?.()?.catch(() => undefined);
    throw err;
  }
  return Buffer.concat(chunks);
}

async function nextWithin<T>(it: AsyncIterator<T>, idleMs: number | undefined): Promise<IteratorResult<T>> {
  const next = it.next();
  if (idleMs === undefined) return next;
  // The read left pending when the wait ends may still fail; that must not surface as an unhandled rejection.
  next.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RotateError('INPUT_TIMEOUT', `stdin sent nothing for ${idleMs / 1000} s and was not closed; the gateway writes one line and closes it (KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS)`)),
      idleMs,
    );
  });
  try {
    return await Promise.race([next, silence]);
  } finally {
    clearTimeout(timer);
  }
}

function decodeBase64(text: string, what: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0) throw new RotateError('INPUT_EMPTY', `${what} is empty`);
  // Buffer.from silently skips invalid characters, so check the alphabet first.
  const urlSafe = /[-_]/.test(compact);
  if (!(urlSafe ? BASE64URL : BASE64).test(compact) || (!urlSafe && compact.length % 4 !== 0) || compact.length % 4 === 1) {
    throw new RotateError('INPUT_NOT_BASE64', `${what} is not base64`);
  }
  return Buffer.from(compact, urlSafe ? 'base64url' : 'base64');
}

function parseJson(bytes: Buffer, what: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new RotateError('INPUT_NOT_JSON', `${what} is not UTF-8 text`);
  }
  const json = text.replace(/^\uFEFF/, '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new RotateError('INPUT_NOT_JSON', `${what} is not JSON`);
  }
  const twice = duplicateKey(json);
  if (twice !== undefined) throw new RotateError('INPUT_INVALID', `${what} holds the key ${JSON.stringify(twice.slice(0, 40))} twice in one object`);
  return parsed;
}

/**
 * The first key some object in `json` (already known to be valid JSON) holds twice. JSON.parse keeps the last
 * one, other parsers the first: a key given twice may mean one thing to whoever wrote it and another here.
 */
function duplicateKey(json: string): string | undefined {
  const open: Array<Set<string> | null> = []; // one entry per enclosing object (its keys) or array (null)
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      const keys = open[open.length - 1];
      if (keys && expectKey) {
        const key = JSON.parse(json.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === '{') {
      open.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      open.push(null);
    } else if (c === '}' || c === ']') {
      open.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = Boolean(open[open.length - 1]);
    }
  }
  return undefined;
}

function optionalString(obj: Record<string, unknown>, key: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new RotateError('INPUT_INVALID', `"${key}" must be a string, not ${kind(v)}`);
  return v;
}

function optionalUid(obj: Record<string, unknown>, key: string): string | undefined {
  const v = optionalString(obj, key);
  if (v !== undefined && !UID.test(v)) throw new RotateError('INPUT_INVALID', `"${key}" is not a Keeper record UID (22 URL-safe base64 characters)`);
  return v;
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function parseRecords(value: unknown): GatewayRecord[] {
  if (value === undefined || value === null || value === '') return [];
  // Documented as base64 of a JSON array; an already-decoded array is accepted too.
  const list = typeof value === 'string' ? parseJson(decodeBase64(value, '"records"'), '"records"') : value;
  if (!Array.isArray(list)) throw new RotateError('INPUT_INVALID', `"records" must be a JSON array, not ${kind(list)}`);
  const seen = new Set<string>();
  return list.map((item, i) => {
    if (!item || typeof item !== 'object' || Array.isArray(item)) {
      throw new RotateError('INPUT_INVALID', `"records"[${i}] must be an object, not ${kind(item)}`);
    }
    const dict = item as Record<string, unknown>;
    if (!isRecordUid(dict.uid)) throw new RotateError('INPUT_INVALID', `"records"[${i}].uid is not a Keeper record UID`);
    if (seen.has(dict.uid)) throw new RotateError('INPUT_INVALID', `"records" lists record ${dict.uid} twice`);
    seen.add(dict.uid);
    if (dict.title !== undefined && dict.title !== null && typeof dict.title !== 'string') {
      throw new RotateError('INPUT_INVALID', `"records"[${i}].title must be a string`);
    }
    const { uid, title, ...fields } = dict;
    return { uid, title: typeof title === 'string' ? title : undefined, fields };
  });
}

/** Decodes and validates the gateway's stdin. Throws a RotateError (exit code 2) on anything unexpected. */
export function parseGatewayInput(raw: Buffer | string): GatewayInput {
  const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
  if (bytes.length > MAX_INPUT_BYTES) throw new RotateError('INPUT_TOO_LARGE', `gateway input is larger than ${MAX_INPUT_BYTES} bytes`);
  const text = bytes.toString('latin1').trim();
  if (text.length === 0) throw new RotateError('INPUT_EMPTY', 'no gateway input on stdin (expected one base64 line)');
  // Line breaks inside are tolerated (a wrapped base64 blob is still one object); two objects fail to decode.
  const parsed = parseJson(decodeBase64(text, 'gateway input'), 'decoded gateway input');
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new RotateError('INPUT_INVALID', `decoded gateway input must be a JSON object, not ${kind(parsed)}`);
  }
  const obj = parsed as Record<string, unknown>;
  const userRecordUid = optionalUid(obj, 'userRecordUid');
  if (!userRecordUid) throw new RotateError('INPUT_INVALID', '"userRecordUid" is missing');
  const newPassword = optionalString(obj, 'newPassword');
  const oldPassword = optionalString(obj, 'oldPassword');
  const user = optionalString(obj, 'user');
  if (user !== undefined && /[\u0000-\u001f\u007f]/.test(user)) throw new RotateError('INPUT_INVALID', '"user" contains control characters');
  const providerRecordUid = optionalUid(obj, 'providerRecordUid');
  if (providerRecordUid === userRecordUid) throw new RotateError('INPUT_INVALID', '"providerRecordUid" names the PAM User record itself, not a PAM configuration');
  return {
    userRecordUid,
    providerRecordUid,
    resourceRecordUid: optionalUid(obj, 'resourceRecordUid'),
    user,
    newPassword: newPassword === undefined ? undefined : new Secret(newPassword),
    oldPassword: oldPassword === undefined ? undefined : new Secret(oldPassword),
    records: parseRecords(obj.records),
  };
}

/**
 * The gateway input `--doctor --record UID [--config UID]` stands for, so a person checking a record on the gateway
 * host needs no hand-made base64 line: the same UID rules as the gateway's line (a value that fails them is never
 * echoed: it may be anything pasted by mistake), and no attached records.
 */
export function gatewayInputFromFlags(record: string, config: string | undefined): GatewayInput {
  if (!isRecordUid(record)) throw new RotateError('INPUT_INVALID', '--record is not a Keeper record UID (22 URL-safe base64 characters)');
  if (config !== undefined && !isRecordUid(config)) throw new RotateError('INPUT_INVALID', '--config is not a Keeper record UID (22 URL-safe base64 characters)');
  if (config === record) throw new RotateError('INPUT_INVALID', '--config names the PAM User record itself, not a PAM configuration');
  return { userRecordUid: record, providerRecordUid: config, resourceRecordUid: undefined, user: undefined, newPassword: undefined, oldPassword: undefined, records: [] };
}

/** Encodes parameters exactly as the gateway does: `records` as base64 JSON, then the whole object as base64. */
export function encodeGatewayInput(params: Record<string, unknown> & { records?: unknown }): string {
  const { records, ...rest } = params;
  const body = records === undefined ? rest : { ...rest, records: Buffer.from(JSON.stringify(records)).toString('base64') };
  return Buffer.from(JSON.stringify(body)).toString('base64');
}
