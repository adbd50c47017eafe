// Secret hygiene. Part A: a Secret cannot reach text by accident (string conversion, JSON, util.inspect,
// console formats, copies, error causes, our Logger). Part B: errors the real SDKs throw against the sandbox over
// HTTPS, provoked so that the request or the reply carries a secret (an error page that echoes the request, a
// reply carrying a new secret that fails to parse or comes back inside an error), never put that secret into the
// RotateError our wrappers make (message, toLine, util.inspect with its cause chain, hidden fields included),
// into describe(), or into the output of a script run that hits the error. Each case first proves the secret
// really was in the exchange (from sandbox state, or from the raw SDK error itself), so every absence can fail.
//
// What the sandbox assumes about the real services: none of them is known to echo a request body or a new
// secret into an error. The echoes stand for what sits in between (a proxy's or WAF's error page that quotes the
// request, a middlebox that mangles a 200), and for SDKs that quote what they received: the Graph client keeps a
// non-JSON error body in `GraphError.body` and an error's `message` as sent; MSAL puts `error_description` into
// its message; the AWS SDK keeps the raw reply in the hidden `$response` and `$responseBodyText` of a parse
// error and an error's <Message> as sent; the KSM SDK throws the first 1000 bytes of a non-200 body as its message.
import assert from 'node:assert/strict';
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { after, afterEach, before, describe, test } from 'node:test';
import { format, inspect } from 'node:util';
import { serialize } from 'node:v8';
import { CreateAccessKeyCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { ClientSecretCredential } from '@azure/identity';
import { UpdateTransactionType, getSecrets, inMemoryStorage, updateSecret2 } from '@keeper-security/secrets-manager-core';
import { Client } from '@microsoft/microsoft-graph-client';
import { Deadline } from '../../src/deadline.js';
import { RotateError, describe as describeError } from '../../src/errors.js';
import { toGatewayConfig } from '../../src/keeper/config.js';
import type { RecordData } from '../../src/keeper/record-data.js';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import { KeeperVault } from '../../src/keeper/vault.js';
import { Logger } from '../../src/log.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { FaultSpec } from '../../src/sandbox/faults.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { Secret, redact, scrubError } from '../../src/secret.js';
import { callerIdentity, IamAccessKeys } from '../../src/targets/aws-iam-access-key/iam.js';
import { GRAPH_SCOPE, GraphApplications, newCredential } from '../../src/targets/azure-app-secret/graph.js';
import { WizGraphql, requestToken } from '../../src/targets/wiz-service-account/wiz-api.js';
import { type ScriptResult, loadFixture, startScriptSandbox } from '../helpers/run-script.js';

// ---------------------------------------------------------------------------------------------------------------
// What "appears" means: the value, any form it takes in a body (URL or form encoded, base64, a JSON string), and
// any 12-character piece of those: a message cut short, or a parser's excerpt, leaks part of a secret.

const PIECE = 12;

function forms(value: string): string[] {
  return [...new Set([value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2), Buffer.from(value).toString('base64'), JSON.stringify(value).slice(1, -1)])];
}

/** Where `value` (or a piece of it) shows in `text`, or undefined. */
function findLeak(text: string, value: string): string | undefined {
  for (const form of forms(value)) {
    if (text.includes(form)) return `the value${form === value ? '' : ` (as ${form})`}`;
    if (form.length >= PIECE + 4) {
      for (let i = 0; i + PIECE <= form.length; i++) {
        const piece = form.slice(i, i + PIECE);
        if (text.includes(piece)) return `a piece of it (${JSON.stringify(piece)} at ${i})`;
      }
    }
  }
  return undefined;
}

function assertAbsent(text: string, value: string, where: string): void {
  assert.ok(value.length >= PIECE, `test bug: a ${value.length}-character secret is too short to look for`);
  const leak = findLeak(text, value);
  assert.equal(leak, undefined, `${where} shows ${leak}:\n${text.slice(0, 3000)}`);
}

/** The precondition of every case: the secret really is where the case put it. */
function assertPresent(text: string, value: string, where: string): void {
  assert.ok(text.includes(value), `precondition: ${where} should carry the secret, or the case proves nothing:\n${text.slice(0, 2000)}`);
}

/** Every way a RotateError gets printed or inspected. */
function views(err: unknown): Record<string, string> {
  assert.ok(err instanceof RotateError, `expected a RotateError, got ${inspect(err)}`);
  return {
    message: err.message,
    'toLine()': err.toLine(),
    'describe(err)': describeError(err),
    'String(err)': String(err),
    stack: err.stack ?? '',
    'JSON.stringify(err)': JSON.stringify(err),
    'inspect(err)': inspect(err, { depth: Infinity }),
    'inspect(err, showHidden)': inspect(err, { depth: Infinity, showHidden: true }),
    'inspect(err.cause, showHidden)': inspect(err.cause, { depth: Infinity, showHidden: true }),
  };
}

/** `cause: false` for errors built from an HTTP reply we read ourselves (Wiz): there is no SDK error to keep. */
function assertCleanError(err: unknown, secret: string, { cause = true } = {}): void {
  for (const [where, text] of Object.entries(views(err))) assertAbsent(text, secret, where);
  // The cause chain is there, so the inspect views above did walk it.
  if (cause) assert.ok((err as RotateError).cause !== undefined, 'the RotateError keeps no cause: the cause-chain check checked nothing');
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to fail');
}

const rawText = (err: unknown) => `${String((err as Error)?.message)}\n${inspect(err, { depth: Infinity, showHidden: true })}`;

// ---------------------------------------------------------------------------------------------------------------
// Part A: the type.

describe('Part A: a Secret cannot reach text by accident', () => {
  // Quotes, a backslash, a newline, `~ / +`, XML and form metacharacters: every escaping path gets exercised.
  const VALUE = 'Zq"9\\Lp~x/+yW7<k>&v=1\nRk2m8-Tt0.Jd5_';
  const s = new Secret(VALUE);

  test('the checks can fail: each form of the value, and a piece of it, is found', () => {
    for (const f of forms(VALUE)) assert.ok(findLeak(`x${f}x`, VALUE), f);
    assert.ok(findLeak(`cut: ${VALUE.slice(3, 3 + PIECE)}`, VALUE));
    assert.equal(findLeak('[secret]', VALUE), undefined);
    assert.equal(s.reveal(), VALUE);
  });

  test('string conversion and template literals', () => {
    for (const text of [String(s), `${s}`, '' + s, [s].join(), [s, s].toString(), s.toLocaleString(), `${[s]}`, String([{ s }].map((o) => o.s))]) {
      assertAbsent(text, VALUE, 'a string conversion');
      assert.match(text, /\[secret\]/);
    }
    assert.ok(Number.isNaN(+(s as unknown as number)));
  });

  test('JSON.stringify, nested in objects and arrays, with indent and replacer', () => {
    const nested = { a: s, b: [s, { c: s, d: [[s]] }], e: new Map([['k', s]]), f: { toJSON: () => ({ g: s }) } };
    for (const text of [JSON.stringify(s), JSON.stringify(nested), JSON.stringify(nested, null, 2), JSON.stringify(nested, (_k, v: unknown) => v), JSON.stringify([s])]) {
      assertAbsent(text, VALUE, 'JSON.stringify');
    }
    assert.equal(JSON.stringify({ a: s, b: [s] }), '{"a":"[secret]","b":["[secret]"]}');
  });

  test('util.inspect at any depth, with hidden fields, without custom inspection, and in colour', () => {
    const deep = { l1: { l2: { l3: { l4: { l5: [new Set([s]), new Map([[s, s]])] } } } } };
    const options = [{}, { depth: Infinity }, { depth: Infinity, showHidden: true }, { customInspect: false, showHidden: true, depth: Infinity }, { colors: true }, { getters: true, showHidden: true }];
    for (const o of options) {
      assertAbsent(inspect(s, o), VALUE, `inspect(secret, ${JSON.stringify(o)})`);
      assertAbsent(inspect(deep, o), VALUE, `inspect(nested, ${JSON.stringify(o)})`);
    }
    // The value sits in a private field: no reflection reaches it.
    assert.deepEqual(Reflect.ownKeys(s), []);
    assert.deepEqual(Object.getOwnPropertyDescriptors(s), {});
    const seen: unknown[] = [];
    for (const k in s) seen.push(k);
    assert.deepEqual(seen, []);
  });

  test('console.log and util.format: %s %o %O %j %d and plain arguments, into a captured stream', () => {
    let captured = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        captured += chunk.toString('utf8');
        done();
      },
    });
    const c = new Console({ stdout: sink, stderr: sink });
    c.log('%s|%o|%O|%j|%d|%i', s, s, s, s, s, s);
    c.log('%s %o %j', { s }, { s: [s] }, { s });
    c.log(s, { s }, [s]);
    c.error(new Error('with a cause', { cause: s }));
    c.table([{ s }]);
    c.dir({ s }, { depth: Infinity, showHidden: true });
    assert.ok(captured.length > 100, 'nothing was captured');
    assertAbsent(captured, VALUE, 'console output');
    assertAbsent(format('%s %o %O %j', s, s, s, { s }), VALUE, 'util.format');
  });

  test('copies: structuredClone, Object.assign, spread and v8.serialize carry no value', () => {
    // The value lives in a private field, which none of these copies: each gives an empty plain object, not a
    // Secret (so it cannot be revealed either), and not the value.
    const clone = structuredClone(s) as unknown;
    assert.deepEqual(clone, {});
    assert.ok(!(clone instanceof Secret));
    assert.deepEqual(Object.assign({}, s), {});
    assert.deepEqual({ ...s }, {});
    assert.deepEqual(structuredClone({ s }), { s: {} });
    assertAbsent(serialize({ s }).toString('latin1'), VALUE, 'v8.serialize');
    assertAbsent(JSON.stringify(structuredClone({ s, list: [s] })), VALUE, 'JSON of a structured clone');
  });

  test('Error messages and cause chains', () => {
    const inner = new Error(`inner ${s}`, { cause: s });
    const outer = new RotateError('TARGET_REQUEST_FAILED', `outer ${s}`, { cause: new AggregateError([inner, s], `agg ${s}`, { cause: { s } }) });
    for (const text of [String(outer), outer.stack ?? '', outer.toLine(), describeError(outer), describeError(inner), inspect(outer, { depth: Infinity, showHidden: true }), inspect(inner, { depth: Infinity })]) {
      assertAbsent(text, VALUE, 'an error');
    }
  });

  test('our Logger, text and JSON lines, even when a message quotes the revealed value', () => {
    for (const fmt of ['text', 'json'] as const) {
      const out: string[] = [];
      const err: string[] = [];
      const log = new Logger({ script: 't', format: fmt, stdout: { write: (c: string) => out.push(c) }, stderr: { write: (c: string) => err.push(c) }, now: () => new Date(0) });
      log.info('step', `by accident: ${s}`, { secret: String(s), list: [String(s)] });
      // What an SDK message quoting a request body looks like once it reaches us: the revealed value, in raw,
      // form-encoded, JSON-escaped and base64 form.
      log.warn('sdk', `server said: ${VALUE} body=${new URLSearchParams({ client_secret: VALUE })} json=${JSON.stringify({ v: VALUE })} b64=${Buffer.from(VALUE).toString('base64')}`);
      log.error('sdk', VALUE);
      log.result('failed', `done ${VALUE}`);
      const text = [...err, ...out].join('');
      assert.equal(err.length + out.length, 4);
      assertAbsent(text, VALUE, `the ${fmt} log`);
      for (const line of text.trim().split('\n')) {
        assert.ok(line.length > 0);
        // A JSON line is read by a parser: what the parser gets back must be clean too.
        if (fmt === 'json') assertAbsent(JSON.stringify(Object.values(JSON.parse(line) as object)), VALUE, 'a parsed JSON log line');
      }
    }
  });

  test('redact scrubs secret-bearing fields it was never told about, in JSON, XML, form, inspect and bearer text', () => {
    // A value no Secret holds: what a reply that failed to parse carries.
    const v = 'Unregistered8Q~abc.def-ghi_jkl/mno+pqrs';
    const texts = [
      JSON.stringify({ keyId: 'k', secretText: v, endDateTime: 'x' }),
      JSON.stringify({ message: JSON.stringify({ secretText: v }) }),
      JSON.stringify({ message: JSON.stringify({ message: JSON.stringify({ clientSecret: v }) }) }),
      `<AccessKey><AccessKeyId>AKIA</AccessKeyId><SecretAccessKey>${v}</SecretAccessKey></AccessKey>`,
      `<Credentials><SessionToken>${v}</SessionToken></Credentials>`,
      `grant_type=client_credentials&client_secret=${encodeURIComponent(v)}&client_id=x`,
      new URLSearchParams({ client_secret: v, audience: 'wiz-api' }).toString(),
      inspect({ serviceAccount: { clientSecret: v } }),
      JSON.stringify({ access_token: v, token_type: 'Bearer' }),
      `authorization: Bearer ${v}`,
      // Some JSON writers escape `/`.
      `{"AccessKey":{"SecretAccessKey":"${v.replaceAll('/', '\\/')}"}}`,
    ];
    for (const t of texts) {
      assertPresent(t.replaceAll('\\/', '/').replaceAll('%2F', '/').replaceAll('%2B', '+').replaceAll('%7E', '~'), v, 'the unscrubbed text');
      assertAbsent(redact(t), v, `redact(${t.slice(0, 60)}…)`);
    }
    // What the scrubbing leaves alone: names, IDs, and our own messages that name a field.
    for (const t of ['the reply holds no clientSecret (Wiz may have replaced the secret anyway)', 'client_secret_id=0b1c previous_client_secret_ids=a,b', '"client_secret" must hold a value']) {
      assert.equal(redact(t), t);
    }
  });

  test('redact drops the excerpt V8 quotes from a JSON syntax error, and describe() scrubs before it cuts', () => {
    const v = 'PieceOfASecretValue0123456789';
    let syntax: unknown;
    try {
      JSON.parse(`{"keyId":"k","secretText":${v}}`);
    } catch (err) {
      syntax = err;
    }
    assert.ok(syntax instanceof SyntaxError);
    // Ten characters: shorter than the pieces assertAbsent looks for, so these checks look for eight.
    assert.ok(syntax.message.includes(v.slice(0, 10)), `precondition: V8 quotes a piece of the body: ${syntax.message}`);
    assert.ok(!describeError(syntax).includes(v.slice(0, 8)), describeError(syntax));
    assert.ok(!inspect(new RotateError('TARGET_REQUEST_FAILED', 'x', { cause: syntax }), { showHidden: true }).includes(v.slice(0, 8)), 'a RotateError caused by it');
    // A registered secret that straddles the 300-character cut: scrubbed whole, before the cut.
    const known = new Secret('StraddlesTheCut-0123456789abcdef');
    const long = new Error(`${'x'.repeat(285)}${known.reveal()} and more`);
    assertAbsent(describeError(long), known.reveal(), 'describe() of a long message');
  });

  test('scrubError keeps codes and statuses, drops bodies, responses and hidden fields', () => {
    const v = 'HiddenBodySecret-0123456789';
    const err = Object.assign(new Error('failed'), { statusCode: 500, code: 'E1', body: `{"x":"${v}"}`, response: { text: v } });
    Object.defineProperty(err, '$response', { value: { body: v }, enumerable: false });
    Object.defineProperty(err, '$responseBodyText', { value: v, enumerable: false });
    Object.defineProperty(err, '$metadata', { value: { httpStatusCode: 500, requestId: 'r1', extra: v }, enumerable: true });
    assertPresent(inspect(err, { showHidden: true }), v, 'the unscrubbed error');
    const copy = scrubError(new Error('outer', { cause: err }));
    const text = inspect(copy, { showHidden: true, depth: Infinity });
    assertAbsent(text, v, 'the scrubbed error');
    const inner = (copy as Error).cause as Record<string, unknown>;
    assert.equal(inner.statusCode, 500);
    assert.equal(inner.code, 'E1');
    assert.deepEqual(inner.$metadata, { httpStatusCode: 500, requestId: 'r1', attempts: undefined });
    // A thrown non-Error, such as a parsed error body: its fields are what must go.
    assertAbsent(inspect(new RotateError('INTERNAL', 'x', { cause: { error: { message: v } } }), { showHidden: true, depth: Infinity }), v, 'a RotateError caused by a thrown object');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Part B: each SDK's errors, in this process, against one sandbox. Every case runs the raw SDK call first and
// shows that its error carries the secret (or, where the SDK drops it, that the sandbox made the secret during
// the call), then runs our wrapper on the same fault and looks for the secret in everything it produced.

describe('Part B: SDK errors that carry a secret never reach our errors', { concurrency: false }, () => {
  let sb: Sandbox;
  const deadline = () => new Deadline(60_000, Date.now, 10_000);
  const A = DEMO.azure;
  const W = DEMO.aws;
  const Z = DEMO.wiz;

  const SHORT_USER = 'ci';
  before(async () => {
    sb = await startSandbox();
    sb.aws.createUser({ userName: SHORT_USER });
  });
  after(() => sb.close());
  afterEach(() => sb.faults.clear());

  const arm = (spec: FaultSpec) => sb.faults.arm(spec);
  const faulted = (service: string, operation: string) => sb.log.entries({ service, operation }).filter((e) => e.fault).length;

  // Azure ----------------------------------------------------------------------------------------------------
  const azureEndpoints = () => ({ authorityHost: sb.urls.azure!, graphEndpoint: sb.urls.azure!, graphResource: 'https://graph.microsoft.com' });
  const adminSecret = () => sb.azure.getApp(A.adminObjectId)!.secrets[0]!.secretText;
  const targetSecrets = () => sb.azure.getApp(A.targetObjectId)!.secrets;
  /** The secret the sandbox made during `fn` (and removes it again, so the app stays under its limit). */
  async function madeDuring<T>(fn: () => Promise<T>): Promise<{ result: T; secret: string }> {
    const before = new Set(targetSecrets().map((x) => x.keyId));
    const result = await fn();
    const made = targetSecrets().filter((x) => !before.has(x.keyId));
    assert.equal(made.length, 1, 'precondition: the call made exactly one secret');
    sb.azure.directory.removePassword(A.targetObjectId, made[0]!.keyId);
    return { result, secret: made[0]!.secretText };
  }
  const rawGraph = () => {
    const cred = new ClientSecretCredential(A.tenantId, A.adminAppId, adminSecret(), { authorityHost: sb.urls.azure!, disableInstanceDiscovery: true });
    return Client.initWithMiddleware({
      authProvider: { getAccessToken: async () => (await cred.getToken(GRAPH_SCOPE)).token },
      baseUrl: sb.urls.azure!,
      customHosts: new Set([new URL(sb.urls.azure!).hostname]),
    });
  };
  const addPasswordBody = () => ({ passwordCredential: { displayName: 'hygiene', endDateTime: new Date(Date.now() + 86_400_000).toISOString() } });
  // A new admin secret per client: newCredential keeps one credential per admin secret in a process (its token
  // cache serves report --check), and MSAL then holds back requests after a throttled one, which an earlier test's
  // armed token fault would otherwise turn into this test's failure.
  const freshAdminSecret = () => sb.azure.directory.addSecret(A.adminObjectId).secretText;
  const ourGraph = (secret = freshAdminSecret()) => new GraphApplications(newCredential(A.tenantId, A.adminAppId, new Secret(secret), azureEndpoints()), azureEndpoints(), deadline());

  test('@azure/identity, a wrong client secret: the 401 names the app, never the secret', async () => {
    const wrong = `Wr0ngQ~${'a'.repeat(10)}${Date.now()}abcdefghij`;
    assert.ok(!sb.azure.checkSecret(A.tenantId, A.adminAppId, wrong), 'precondition: the secret is wrong');
    const before = sb.log.entries({ service: 'azure', operation: 'token' }).filter((e) => e.status === 401).length;
    const err = await failure(ourGraph(wrong).getApplication(A.targetObjectId));
    assert.ok(sb.log.entries({ service: 'azure', operation: 'token' }).filter((e) => e.status === 401).length > before, 'precondition: Entra refused the secret');
    assert.equal((err as RotateError).code, 'TARGET_AUTH_FAILED');
    assertCleanError(err, wrong);
  });

  test('@azure/identity, a token endpoint error page that echoes the request body (client_secret)', async () => {
    const spec: FaultSpec = { service: 'azure', operation: 'token', kind: 'status', status: 500, times: 20, body: '{"error":"server_error","error_description":"the proxy failed; it was sent: {{request:json}}"}' };
    arm(spec);
    const raw = await failure(new ClientSecretCredential(A.tenantId, A.adminAppId, adminSecret(), { authorityHost: sb.urls.azure!, disableInstanceDiscovery: true }).getToken(GRAPH_SCOPE));
    assertPresent(rawText(raw), adminSecret(), 'the raw @azure/identity error');
    sb.faults.clear();
    arm(spec);
    const ours = freshAdminSecret();
    const err = await failure(ourGraph(ours).getApplication(A.targetObjectId));
    assert.ok(faulted('azure', 'token') >= 2);
    assertCleanError(err, ours);
    assertAbsent(describeError(raw), adminSecret(), 'describe(raw @azure/identity error)');
  });

  test('@azure/identity, the echoed secret straddles the 300-character cut of describe()', async () => {
    // The Graph client hands our wrapper the credential's error as a GraphError with the same message (and no
    // name of its own), and the wrapper describes it: a description that puts the secret 15 characters before
    // describe()'s cut leaves a piece that a scrub after the cut cannot recognise.
    const credential = () => new ClientSecretCredential(A.tenantId, A.adminAppId, adminSecret(), { authorityHost: sb.urls.azure!, disableInstanceDiscovery: true });
    const flat = (err: unknown) => String((err as Error).message).replace(/\s+/g, ' ');
    const marker = 'MARKER-7f3e';
    arm({ service: 'azure', operation: 'token', kind: 'status', status: 400, times: 5, body: JSON.stringify({ error: 'server_error', error_description: marker }) });
    const at = flat(await failure(credential().getToken(GRAPH_SCOPE))).indexOf(marker);
    sb.faults.clear();
    assert.ok(at >= 0 && at < 280, `precondition: the description shows early in the message (${at})`);
    const secret = freshAdminSecret();
    const spec: FaultSpec = { service: 'azure', operation: 'token', kind: 'status', status: 400, times: 5, body: JSON.stringify({ error: 'server_error', error_description: `${'p'.repeat(285 - at)}${secret}` }) };
    arm(spec);
    assert.equal(flat(await failure(credential().getToken(GRAPH_SCOPE))).indexOf(secret), 285, 'precondition: the secret starts 15 characters before the cut');
    sb.faults.clear();
    arm(spec);
    const err = await failure(ourGraph(secret).getApplication(A.targetObjectId));
    assertCleanError(err, secret);
  });

  test('Graph addPassword: a 200 whose body is mangled after Entra made the secret (secretText)', async () => {
    const spec: FaultSpec = { service: 'azure', operation: 'addPassword', kind: 'status', status: 200, after: true, body: '\u001f\u008b{{reply}}' };
    arm(spec);
    const raw = await madeDuring(() => failure(rawGraph().api(`/applications/${A.targetObjectId}/addPassword`).post(addPasswordBody())));
    assert.match(String((raw.result as Error).message), /JSON/, 'precondition: the Graph client could not parse the reply');
    // What the reply looked like, read without the SDK: the mangled body still carries the new secret whole.
    arm(spec);
    const token = (await new ClientSecretCredential(A.tenantId, A.adminAppId, adminSecret(), { authorityHost: sb.urls.azure!, disableInstanceDiscovery: true }).getToken(GRAPH_SCOPE)).token;
    const seen = await madeDuring(async () =>
      (
        await fetch(`${sb.urls.azure!}/v1.0/applications/${A.targetObjectId}/addPassword`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(addPasswordBody()),
        })
      ).text(),
    );
    assertPresent(seen.result, seen.secret, 'the mangled reply');
    arm(spec);
    const ours = await madeDuring(() => failure(ourGraph().addPassword(A.targetObjectId, 'hygiene', new Date(Date.now() + 86_400_000).toISOString())));
    assertCleanError(ours.result, ours.secret);
    assertAbsent(describeError(raw.result), raw.secret, 'describe(raw GraphError)');
  });

  test('Graph addPassword: a 500 whose error message echoes the reply with the new secret', async () => {
    const spec: FaultSpec = { service: 'azure', operation: 'addPassword', kind: 'status', status: 500, after: true, body: '{"error":{"code":"InternalServerError","message":"upstream answered {{reply:json}}"}}' };
    arm(spec);
    const raw = await madeDuring(() => failure(rawGraph().api(`/applications/${A.targetObjectId}/addPassword`).post(addPasswordBody())));
    assertPresent(rawText(raw.result), raw.secret, 'the raw GraphError');
    arm(spec);
    const ours = await madeDuring(() => failure(ourGraph().addPassword(A.targetObjectId, 'hygiene', new Date(Date.now() + 86_400_000).toISOString())));
    assertCleanError(ours.result, ours.secret);
    assertAbsent(describeError(raw.result), raw.secret, 'describe(raw GraphError)');
  });

  test('Graph addPassword: a 502 text page that quotes the reply (GraphError.body)', async () => {
    const spec: FaultSpec = { service: 'azure', operation: 'addPassword', kind: 'status', status: 502, after: true, headers: { 'content-type': 'text/plain' }, body: 'Bad gateway. Upstream said: {{reply}}' };
    arm(spec);
    const raw = await madeDuring(() => failure(rawGraph().api(`/applications/${A.targetObjectId}/addPassword`).post(addPasswordBody())));
    assertPresent(rawText(raw.result), raw.secret, 'the raw GraphError (its body)');
    arm(spec);
    const ours = await madeDuring(() => failure(ourGraph().addPassword(A.targetObjectId, 'hygiene', new Date(Date.now() + 86_400_000).toISOString())));
    assertCleanError(ours.result, ours.secret);
  });

  // AWS ------------------------------------------------------------------------------------------------------
  const awsEndpoints = () => ({ region: 'us-east-1', iam: sb.urls.iam, sts: sb.urls.sts });
  const adminKey = () => sb.aws.listKeys(W.adminUserName)[0]!;
  const awsCredentials = () => ({ accessKeyId: adminKey().accessKeyId, secretAccessKey: adminKey().secretAccessKey });
  async function keyMadeDuring<T>(user: string, fn: () => Promise<T>): Promise<{ result: T; secret: string }> {
    const before = new Set(sb.aws.listKeys(user).map((k) => k.accessKeyId));
    const result = await fn();
    const made = sb.aws.listKeys(user).filter((k) => !before.has(k.accessKeyId));
    assert.equal(made.length, 1, 'precondition: the call made exactly one key');
    sb.aws.deleteAccessKey(user, made[0]!.accessKeyId);
    return { result, secret: made[0]!.secretAccessKey };
  }
  const createSpecs: Array<[string, string, FaultSpec]> = [
    ['a 200 whose XML is mangled after IAM made the key (SecretAccessKey, kept in $response)', W.userName, { service: 'iam', operation: 'CreateAccessKey', kind: 'status', status: 200, after: true, headers: { 'content-type': 'text/xml' }, body: '\u001f\u008b{{reply}}' }],
    [
      'a 500 whose <Message> quotes the reply with the new key',
      W.userName,
      {
        service: 'iam',
        operation: 'CreateAccessKey',
        kind: 'status',
        status: 500,
        after: true,
        headers: { 'content-type': 'text/xml' },
        body: '<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceFailure</Code><Message><![CDATA[upstream answered {{reply}}]]></Message></Error><RequestId>0d5e</RequestId></ErrorResponse>',
      },
    ],
    [
      // One line (the reply quoted as a JSON string) and a short user name: the new key falls inside the 300
      // characters our message keeps. For the demo user it falls just past them, which is luck, not protection.
      'a 500 whose <Message> quotes the reply on one line, for a user with a short name',
      SHORT_USER,
      {
        service: 'iam',
        operation: 'CreateAccessKey',
        kind: 'status',
        status: 500,
        after: true,
        headers: { 'content-type': 'text/xml' },
        body: '<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceFailure</Code><Message><![CDATA[{{reply:json}}]]></Message></Error><RequestId>0d5e</RequestId></ErrorResponse>',
      },
    ],
  ];
  for (const [name, user, spec] of createSpecs) {
    test(`IAM CreateAccessKey: ${name}`, async () => {
      arm(spec);
      const client = new IAMClient({ region: 'us-east-1', endpoint: sb.urls.iam, credentials: awsCredentials(), maxAttempts: 1 });
      const raw = await keyMadeDuring(user, () => failure(client.send(new CreateAccessKeyCommand({ UserName: user }))));
      client.destroy();
      assertPresent(rawText(raw.result), raw.secret, 'the raw AWS SDK error');
      arm(spec);
      const iam = new IamAccessKeys(awsEndpoints(), { accessKeyId: adminKey().accessKeyId, secretAccessKey: new Secret(adminKey().secretAccessKey) }, deadline());
      const ours = await keyMadeDuring(user, () => failure(iam.create(user)));
      iam.destroy();
      assertCleanError(ours.result, ours.secret);
      assertAbsent(describeError(raw.result), raw.secret, 'describe(raw AWS SDK error)');
    });
  }

  test('STS GetCallerIdentity signed with the new key: a 500, a text page and a mangled 200 that quote it', async () => {
    const made = sb.aws.createAccessKey(W.userName);
    try {
      const secret = made.secretAccessKey;
      const keys = { accessKeyId: made.accessKeyId, secretAccessKey: new Secret(secret) };
      const bodies: Array<[number, string, string]> = [
        [500, 'text/xml', `<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>signing key ${secret}</Message></Error><RequestId>1</RequestId></ErrorResponse>`],
        [500, 'text/plain', `upstream failure for ${secret}`],
        [200, 'text/xml', `\u001f<GetCallerIdentityResponse><SecretAccessKey>${secret}</SecretAccessKey>`],
      ];
      for (const [status, type, body] of bodies) {
        const spec: FaultSpec = { service: 'sts', operation: 'GetCallerIdentity', kind: 'status', status, headers: { 'content-type': type }, body };
        arm(spec);
        const client = new STSClient({ region: 'us-east-1', endpoint: sb.urls.sts, credentials: { accessKeyId: made.accessKeyId, secretAccessKey: secret }, maxAttempts: 1 });
        const raw = await failure(client.send(new GetCallerIdentityCommand({})));
        client.destroy();
        assertPresent(rawText(raw), secret, `the raw STS error (${status} ${type})`);
        arm(spec);
        const err = await failure(callerIdentity(awsEndpoints(), keys, deadline()));
        assertCleanError(err, secret);
        assertAbsent(describeError(raw), secret, 'describe(raw STS error)');
      }
    } finally {
      sb.aws.deleteAccessKey(W.userName, made.accessKeyId);
    }
  });

  // Wiz ------------------------------------------------------------------------------------------------------
  const wizSecret = () => sb.wiz.getServiceAccount(Z.clientId)!.clientSecret;
  const wizOptions = () => ({ deadline: deadline() });
  const authUrl = () => `${sb.urls['wiz-auth']!}/oauth/token`;

  test('Wiz token endpoint: an error page that echoes the form body (client_secret)', async () => {
    const spec: FaultSpec = { service: 'wiz-auth', operation: 'token', kind: 'status', status: 400, times: 5, body: '{"error":"invalid_request","error_description":"could not read {{request:json}}"}' };
    arm(spec);
    const form = new URLSearchParams({ grant_type: 'client_credentials', audience: 'wiz-api', client_id: Z.clientId, client_secret: wizSecret() });
    const raw = await (await fetch(authUrl(), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })).text();
    assertPresent(raw, wizSecret(), 'the raw token reply');
    sb.faults.clear();
    arm(spec);
    const err = await failure(requestToken(authUrl(), Z.clientId, new Secret(wizSecret()), wizOptions()));
    assertCleanError(err, wizSecret(), { cause: false });
  });

  const rotateSpecs: Array<[string, FaultSpec]> = [
    ['a 200 mangled after Wiz replaced the secret (clientSecret)', { service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 200, after: true, times: 3, body: '\u001f\u008b{{reply}}' }],
    [
      'a GraphQL error whose message quotes the reply with the new secret',
      { service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 200, after: true, times: 3, body: '{"errors":[{"message":"resolver failed after {{reply:json}}","extensions":{"code":"INTERNAL"}}],"data":null}' },
    ],
    ['a 502 that quotes the reply', { service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 502, after: true, times: 3, body: '{"error":"bad gateway","message":"{{reply:json}}"}' }],
  ];
  for (const [name, spec] of rotateSpecs) {
    test(`Wiz rotateServiceAccountSecret: ${name}`, async () => {
      const token = await requestToken(authUrl(), Z.clientId, new Secret(wizSecret()), wizOptions());
      assert.ok(token.ok);
      // What the reply looked like, read without our client: it still carries the new secret whole.
      arm({ ...spec, times: 1 });
      const seen = await (
        await fetch(`${sb.urls['wiz-api']!}/graphql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token.token.bearer.reveal()}`, 'content-type': 'application/json' },
          body: JSON.stringify({ query: `mutation { rotateServiceAccountSecret(ID: "${Z.clientId}") { serviceAccount { clientSecret } } }` }),
        })
      ).text();
      assertPresent(seen, wizSecret(), 'the mangled reply');
      // Our client, which retries: the error of every attempt, and every secret Wiz switched to.
      const made: string[] = [];
      const errors: unknown[] = [];
      arm(spec);
      const api = new WizGraphql(`${sb.urls['wiz-api']!}/graphql`, token.token, {
        deadline: deadline(),
        onRetry: (_what, _attempt, e) => {
          errors.push(e);
          made.push(wizSecret());
        },
      });
      errors.push(await failure(api.rotateSecret(Z.clientId)));
      made.push(wizSecret());
      assert.equal(new Set(made).size, 3, 'precondition: three rotations, three new secrets, each reply mangled');
      for (const err of errors) for (const secret of made) assertCleanError(err, secret, { cause: false });
    });
  }

  // KSM ------------------------------------------------------------------------------------------------------
  test('KSM update_secret: an error body that quotes the new secret, straddling the cut of describe()', async () => {
    const folder = sb.ksm.createFolder('hygiene');
    const data: RecordData = { title: 'r', type: 'pamUser', fields: [{ type: 'login', value: ['app'] }], custom: [{ type: 'secret', label: 'client_secret', value: ['old-secret-value'] }] };
    const uid = sb.ksm.seedRecord({ data, folderUid: folder }).uid;
    const config = toGatewayConfig({ ...sb.gatewayConfig }, 'test');
    const secret = new Secret(`NewKsmSecret8Q~${Date.now()}-abcdefghijklmn`);
    // The SDK's message is the body: the secret starts at 285 of describe()'s 300 characters.
    const head = '{"error":"server_error","message":"';
    const body = `${head}${'p'.repeat(285 - head.length)}${secret.reveal()}"}`;
    const spec: FaultSpec = { service: 'ksm', operation: 'update_secret', kind: 'status', status: 500, body };
    const withSecret = (d: RecordData) => {
      const copy = cloneData(d);
      writeText(copy, { label: 'client_secret', kind: 'secret' }, secret.reveal());
      return copy;
    };

    const options = { storage: inMemoryStorage({ ...config.values }) };
    const fetched = (await getSecrets(options, [uid])).records[0]!;
    arm(spec);
    const raw = await failure(updateSecret2(options, { ...fetched, data: withSecret(fetched.data as RecordData) }, { transactionType: UpdateTransactionType.Rotation }));
    assertPresent(rawText(raw), secret.reveal(), 'the raw KSM SDK error');
    assert.equal((raw as Error).message.indexOf(secret.reveal()), 285, 'precondition: the secret straddles the cut');

    const vault = new KeeperVault(config, { deadline: deadline() });
    try {
      const record = (await vault.fetch([uid])).get(uid)!;
      arm(spec);
      const err = await failure(vault.saveInTransaction(record, withSecret(record.data)));
      assert.equal(faulted('ksm', 'update_secret'), 2);
      assertCleanError(err, secret.reveal());
      assertAbsent(describeError(raw), secret.reveal(), 'describe(raw KSM SDK error)');
      assert.equal(readText(sb.ksm.readRecord(uid)!.data, 'client_secret'), 'old-secret-value');
    } finally {
      vault.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Part C: the scripts, run as the gateway runs them, hitting the same errors. What matters most: nothing in
// their whole stdout and stderr. Each case reads the secrets from sandbox state after the run and checks that
// the faulted call really happened.

interface RunCase {
  name: string;
  script: 'azure-app-secret' | 'aws-iam-access-key' | 'wiz-service-account';
  /** Arms the faults; may register fault listeners that fill a body from sandbox state as the fault fires. */
  arm(sb: Sandbox): void | Promise<void>;
  /** The service and operation the fault hits. */
  hits: [string, string];
  /** The line that proves the error (the text that quoted the secret) reached the output. */
  shows: RegExp;
  /** The secrets that must not show: read from sandbox state after the run. */
  secrets(sb: Sandbox): string[];
}

/** The values of a kind this sandbox issued during the run (`issued` keeps removed and replaced ones too). */
const madeInRun = (sb: Sandbox, shape: RegExp, issued: Iterable<string>) => [...issued].filter((v) => shape.test(v) && !initialIssued.get(sb)!.has(v));
const AZURE_SECRET = /^.{3}\dQ~.{34}$/;
const AWS_SECRET = /^.{40}$/;
const WIZ_SECRET = /^[A-Za-z0-9]{64}$/;
const newAzureSecrets = (sb: Sandbox) => madeInRun(sb, AZURE_SECRET, sb.azure.directory.issued);
const newAwsSecrets = (sb: Sandbox) => madeInRun(sb, AWS_SECRET, sb.aws.issued);
const newWizSecrets = (sb: Sandbox) => madeInRun(sb, WIZ_SECRET, sb.wiz.issued);

/** Every value each sandbox had issued before its run. */
const initialIssued = new Map<Sandbox, Set<string>>();

const RUN_CASES: RunCase[] = [
  {
    name: 'Azure: the token endpoint echoes the request body (the admin client_secret)',
    script: 'azure-app-secret',
    hits: ['azure', 'token'],
    shows: /keeper-rotate: TARGET_AUTH_FAILED: Graph reading application .*Request: client_id=/,
    arm: (sb) => sb.faults.arm({ service: 'azure', operation: 'token', kind: 'status', status: 401, times: 50, body: '{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Request: {{request:json}}","error_codes":[7000215]}' }),
    secrets: (sb) => [sb.azure.getApp(DEMO.azure.adminObjectId)!.secrets[0]!.secretText],
  },
  {
    name: "Azure: the token endpoint's error quotes the admin secret across the describe() cut",
    script: 'azure-app-secret',
    hits: ['azure', 'token'],
    shows: /keeper-rotate: TARGET_REQUEST_FAILED: Graph reading application .*p{20}/,
    arm: async (sb) => {
      // Where the description lands in the credential's message, learnt from one call in this process.
      const marker = 'MARKER-7f3e';
      sb.faults.arm({ service: 'azure', operation: 'token', kind: 'status', status: 400, body: JSON.stringify({ error: 'server_error', error_description: marker }) });
      const probe = new ClientSecretCredential(DEMO.azure.tenantId, DEMO.azure.adminAppId, 'probe', { authorityHost: sb.urls.azure!, disableInstanceDiscovery: true });
      const at = String(((await failure(probe.getToken(GRAPH_SCOPE))) as Error).message).replace(/\s+/g, ' ').indexOf(marker);
      assert.ok(at >= 0 && at < 280, `precondition: the description shows early in the message (${at})`);
      sb.faults.clear();
      sb.log.clear();
      const secret = sb.azure.getApp(DEMO.azure.adminObjectId)!.secrets[0]!.secretText;
      sb.faults.arm({ service: 'azure', operation: 'token', kind: 'status', status: 400, times: 50, body: JSON.stringify({ error: 'server_error', error_description: `${'p'.repeat(285 - at)}${secret}` }) });
    },
    secrets: (sb) => [sb.azure.getApp(DEMO.azure.adminObjectId)!.secrets[0]!.secretText],
  },
  {
    name: 'Azure: addPassword answers 500 quoting the reply with the new secret',
    script: 'azure-app-secret',
    hits: ['azure', 'addPassword'],
    shows: /keeper-rotate: TARGET_REQUEST_FAILED: Graph adding a client secret .*upstream answered/,
    arm: (sb) => sb.faults.arm({ service: 'azure', operation: 'addPassword', kind: 'status', status: 500, after: true, body: '{"error":{"code":"InternalServerError","message":"upstream answered {{reply:json}}"}}' }),
    secrets: (sb) => newAzureSecrets(sb),
  },
  {
    name: 'Azure: addPassword answers a mangled 200 after making the secret',
    script: 'azure-app-secret',
    hits: ['azure', 'addPassword'],
    shows: /keeper-rotate: TARGET_REQUEST_FAILED: Graph adding a client secret .*HTTP 200, a body that is not a Graph error/,
    arm: (sb) => sb.faults.arm({ service: 'azure', operation: 'addPassword', kind: 'status', status: 200, after: true, body: '\u001f\u008b{{reply}}' }),
    secrets: (sb) => newAzureSecrets(sb),
  },
  {
    name: 'Azure: KSM update_secret fails with a body that quotes the new secret across the describe() cut',
    script: 'azure-app-secret',
    hits: ['ksm', 'update_secret'],
    shows: /keeper-rotate: KEEPER_REQUEST_FAILED: Keeper saving record .*p{20}/,
    arm: (sb) => {
      const spec: FaultSpec = { service: 'ksm', operation: 'update_secret', kind: 'status', status: 500, times: 10, body: '' };
      // The secret exists only once addPassword has run: the body is written as the fault fires.
      sb.faults.onFire((fired) => {
        if (fired.operation !== 'update_secret') return;
        const newest = sb.azure.getApp(DEMO.azure.targetObjectId)!.secrets.at(-1)!.secretText;
        const head = '{"error":"server_error","message":"';
        fired.body = `${head}${'p'.repeat(285 - head.length)}${newest}"}`;
      });
      sb.faults.arm(spec);
    },
    secrets: (sb) => newAzureSecrets(sb),
  },
  {
    name: 'AWS: CreateAccessKey answers 500 quoting the reply with the new key',
    script: 'aws-iam-access-key',
    hits: ['iam', 'CreateAccessKey'],
    shows: /keeper-rotate: TARGET_REQUEST_FAILED: AWS CreateAccessKey .* failed: ServiceFailure/,
    arm: (sb) =>
      sb.faults.arm({
        service: 'iam',
        operation: 'CreateAccessKey',
        kind: 'status',
        status: 500,
        after: true,
        headers: { 'content-type': 'text/xml' },
        body: '<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceFailure</Code><Message><![CDATA[upstream answered {{reply}}]]></Message></Error><RequestId>0d5e</RequestId></ErrorResponse>',
      }),
    secrets: (sb) => newAwsSecrets(sb),
  },
  {
    name: 'AWS: CreateAccessKey answers a mangled 200 after making the key',
    script: 'aws-iam-access-key',
    hits: ['iam', 'CreateAccessKey'],
    shows: /keeper-rotate: TARGET_REQUEST_FAILED: AWS CreateAccessKey .* XML parse error/,
    arm: (sb) => sb.faults.arm({ service: 'iam', operation: 'CreateAccessKey', kind: 'status', status: 200, after: true, headers: { 'content-type': 'text/xml' }, body: '\u001f\u008b{{reply}}' }),
    secrets: (sb) => newAwsSecrets(sb),
  },
  {
    name: 'AWS: STS GetCallerIdentity with the new key answers 500 quoting it',
    script: 'aws-iam-access-key',
    hits: ['sts', 'GetCallerIdentity'],
    shows: /keeper-rotate: VERIFY_FAILED: .*GetCallerIdentity .*could not verify/,
    arm: (sb) => {
      sb.faults.onFire((fired) => {
        if (fired.operation !== 'GetCallerIdentity') return;
        const newest = sb.aws.listKeys(DEMO.aws.userName).at(-1)!.secretAccessKey;
        fired.body = `<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>could not verify ${newest}</Message></Error><RequestId>1</RequestId></ErrorResponse>`;
      });
      sb.faults.arm({ service: 'sts', operation: 'GetCallerIdentity', kind: 'status', status: 500, times: 50, headers: { 'content-type': 'text/xml' }, body: '' });
    },
    secrets: (sb) => newAwsSecrets(sb),
  },
  {
    name: 'Wiz: the token endpoint echoes the form body (client_secret)',
    script: 'wiz-service-account',
    hits: ['wiz-auth', 'token'],
    shows: /keeper-rotate: TARGET_REQUEST_FAILED: Wiz token request .*could not read grant_type/,
    arm: (sb) => sb.faults.arm({ service: 'wiz-auth', operation: 'token', kind: 'status', status: 500, times: 50, body: '{"error":"server_error","error_description":"could not read {{request:json}}"}' }),
    secrets: (sb) => [sb.wiz.getServiceAccount(DEMO.wiz.clientId)!.clientSecret],
  },
  {
    name: 'Wiz: the rotation answers a GraphQL error quoting the reply with the new secret, then a mangled 200',
    script: 'wiz-service-account',
    hits: ['wiz-api', 'rotateServiceAccountSecret'],
    shows: /WARN wiz: replacing the secret .*resolver failed after/,
    arm: (sb) => {
      sb.faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 200, after: true, body: '{"errors":[{"message":"resolver failed after {{reply:json}}","extensions":{"code":"INTERNAL"}}],"data":null}' });
      sb.faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 200, after: true, nth: 2, body: '\u001f\u008b{{reply}}' });
    },
    secrets: (sb) => newWizSecrets(sb),
  },
];

describe('Part C: a script that hits the error prints no secret', { concurrency: 3 }, () => {
  for (const c of RUN_CASES) {
    test(c.name, { timeout: 120_000 }, async () => {
      const s = await startScriptSandbox(c.script);
      try {
        const sb = s.sandbox;
        initialIssued.set(sb, new Set([...sb.azure.directory.issued, ...sb.aws.issued, ...sb.wiz.issued]));
        await c.arm(sb);
        const run: ScriptResult = await s.run(loadFixture(c.script), { env: { KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS: '5' }, deadlineSeconds: 60 });
        const output = run.stdout + run.stderr;
        const [service, operation] = c.hits;
        assert.ok(sb.log.entries({ service, operation }).some((e) => e.fault === 'status'), `precondition: the fault on ${service} ${operation} never fired:\n${output}`);
        assert.match(output, c.shows, 'precondition: the error that quoted the secret never reached the output');
        const secrets = c.secrets(sb);
        assert.ok(secrets.length > 0, 'precondition: the case names at least one secret to look for');
        for (const secret of secrets) assertAbsent(output, secret, `the output of ${c.script} (exit ${run.code})`);
        // And every other value any service of this sandbox issued (tokens, the admin's secrets), in full.
        for (const v of [...sb.azure.directory.issued, ...sb.aws.issued, ...sb.wiz.issued]) {
          if (v.length >= 8) assert.ok(!output.includes(v), `the output of ${c.script} shows an issued value:\n${output}`);
        }
      } finally {
        await s.close();
      }
    });
  }
});
