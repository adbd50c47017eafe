// The pure parts of the Wiz target: when a run rotates, which expiry it sets, and how Wiz's replies map to
// error codes and URLs. Checked here without a network; the end-to-end file runs them against the sandbox.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideRotation, formatSpan, isExpired, newExpiry, sameInstant } from '../../src/targets/wiz-service-account/schedule.js';
import { apiUrlFor, audienceFor, graphqlFailure, jwtClaims, missingScopes } from '../../src/targets/wiz-service-account/wiz-api.js';

const NOW = new Date('2025-06-01T12:00:00.750Z');
const DAY = 86_400_000;
const at = (days: number) => new Date(NOW.getTime() + days * DAY).toISOString();

describe('decideRotation', () => {
  test('rotate_within_days 0 rotates on every run, whatever the expiry', () => {
    for (const expiresAt of [at(365), at(0.5), null]) {
      const d = decideRotation({ expiresAt, now: NOW, withinDays: 0, interrupted: false });
      assert.equal(d.rotate, true);
      assert.match(d.reason, /every run rotates/);
    }
  });

  test('an expiry further away than the window skips, naming the expiry', () => {
    const d = decideRotation({ expiresAt: at(10), now: NOW, withinDays: 2, interrupted: false });
    assert.equal(d.rotate, false);
    assert.equal(d.reason, `it expires at ${at(10)}, in 10 days: more than rotate_within_days (2) away`);
  });

  test('an expiry inside the window, or exactly at its edge, rotates', () => {
    assert.equal(decideRotation({ expiresAt: at(1.9), now: NOW, withinDays: 2, interrupted: false }).rotate, true);
    assert.equal(decideRotation({ expiresAt: at(2), now: NOW, withinDays: 2, interrupted: false }).rotate, true);
    assert.equal(decideRotation({ expiresAt: at(2.01), now: NOW, withinDays: 2, interrupted: false }).rotate, false);
  });

  test('an account without an expiry, or with one that cannot be read, rotates (and gets one)', () => {
    assert.match(decideRotation({ expiresAt: null, now: NOW, withinDays: 2, interrupted: false }).reason, /no expiry/);
    const d = decideRotation({ expiresAt: 'next tuesday', now: NOW, withinDays: 2, interrupted: false });
    assert.equal(d.rotate, true);
    assert.match(d.reason, /cannot be read/);
  });

  test('an interrupted earlier run rotates even far from expiry: the secret Wiz holds may be unknown', () => {
    const d = decideRotation({ expiresAt: at(300), now: NOW, withinDays: 2, interrupted: true });
    assert.equal(d.rotate, true);
    assert.match(d.reason, /earlier run stopped/);
  });
});

describe('newExpiry and friends', () => {
  test('now plus the lifetime, to the second, in the form Wiz writes', () => {
    assert.equal(newExpiry(NOW, 30), '2025-07-01T12:00:00Z');
    assert.equal(newExpiry(NOW, 1), '2025-06-02T12:00:00Z');
    assert.match(newExpiry(new Date(), 3650), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  });

  test('isExpired: past and present expire, the future and "never" do not', () => {
    assert.equal(isExpired(at(-1), NOW), true);
    assert.equal(isExpired(NOW.toISOString(), NOW), true);
    assert.equal(isExpired(at(0.001), NOW), false);
    assert.equal(isExpired(null, NOW), false);
    assert.equal(isExpired('garbage', NOW), false);
  });

  test('sameInstant compares to the second across notations', () => {
    assert.equal(sameInstant('2025-07-01T12:00:00Z', '2025-07-01T12:00:00.000+00:00'), true);
    assert.equal(sameInstant('2025-07-01T12:00:00Z', '2025-07-01T14:00:00+02:00'), true);
    assert.equal(sameInstant('2025-07-01T12:00:00Z', '2025-07-01T12:00:01Z'), false);
    assert.equal(sameInstant(null, null), true);
    assert.equal(sameInstant('2025-07-01T12:00:00Z', null), false);
  });

  test('formatSpan', () => {
    assert.equal(formatSpan(10 * DAY), '10 days');
    assert.equal(formatSpan(1.5 * DAY), '1.5 days');
    assert.equal(formatSpan(5 * 3_600_000), '5 hours');
    assert.equal(formatSpan(40 * 60_000), '40 minutes');
  });
});

describe('Wiz replies', () => {
  const body = (code: string, message = 'something') => ({ errors: [{ message, extensions: { code } }], data: null });

  test('GraphQL error codes, under the status Wiz answers each with, map to stable RotateError codes; refusals say so', () => {
    const cases: Array<[string, number, string, boolean, boolean]> = [
      // code, HTTP status, RotateError code, transient, refused (not applied)
      ['UNAUTHENTICATED', 401, 'TARGET_AUTH_FAILED', false, true],
      ['UNAUTHORIZED', 403, 'TARGET_PERMISSION_DENIED', false, true],
      ['FORBIDDEN_IP', 403, 'TARGET_PERMISSION_DENIED', false, true],
      ['NOT_FOUND', 404, 'TARGET_NOT_FOUND', false, true],
      ['RATE_LIMIT_EXCEEDED', 429, 'TARGET_THROTTLED', true, true],
      ['BAD_USER_INPUT', 400, 'TARGET_REQUEST_FAILED', false, true],
      // A GraphQL server's field error (HTTP 200) is still Wiz's answer.
      ['UNAUTHORIZED', 200, 'TARGET_PERMISSION_DENIED', false, true],
      ['BAD_USER_INPUT', 200, 'TARGET_REQUEST_FAILED', false, true],
      ['INTERNAL', 200, 'TARGET_REQUEST_FAILED', true, false],
    ];
    for (const [wizCode, status, code, transient, refused] of cases) {
      const err = graphqlFailure('reading it', status, body(wizCode));
      const label = `${wizCode} under ${status}`;
      assert.equal(err.code, code, label);
      assert.equal(err.transient, transient, label);
      assert.equal(err.refused, refused, label);
      assert.equal(err.status, status, label);
      assert.match(err.message, new RegExp(`^reading it: ${wizCode} \\(something\\)`), label);
    }
    assert.match(graphqlFailure('x', 403, body('UNAUTHORIZED')).message, /read:service_accounts \(or read:all, admin:all\) and update:service_accounts \(or write:service_accounts, update:all, write:all, admin:all\)/);
  });

  test('under a 5xx no code is trusted to mean "not applied": the outcome stays unknown and the call is retried', () => {
    for (const wizCode of ['INTERNAL', 'NOT_FOUND', 'BAD_USER_INPUT', 'UNAUTHORIZED', 'RATE_LIMIT_EXCEEDED']) {
      for (const status of [500, 502, 503]) {
        const err = graphqlFailure('x', status, body(wizCode));
        assert.equal(err.code, 'TARGET_REQUEST_FAILED', `${wizCode} under ${status}`);
        assert.equal(err.refused, false, `${wizCode} under ${status}`);
        assert.equal(err.transient, true, `${wizCode} under ${status}`);
        assert.match(err.message, new RegExp(`^x: HTTP ${status}: ${wizCode} \\(something\\)`));
      }
    }
  });

  test('without a GraphQL error body, the HTTP status decides', () => {
    assert.deepEqual([429, 502, 503, 401, 403, 404, 418].map((s) => [graphqlFailure('x', s, undefined).code, graphqlFailure('x', s, undefined).transient]), [
      ['TARGET_THROTTLED', true],
      ['TARGET_REQUEST_FAILED', true],
      ['TARGET_REQUEST_FAILED', true],
      ['TARGET_AUTH_FAILED', false],
      ['TARGET_PERMISSION_DENIED', false],
      ['TARGET_NOT_FOUND', false],
      ['TARGET_REQUEST_FAILED', false],
    ]);
    assert.equal(graphqlFailure('x', 200, { data: null }).code, 'TARGET_REQUEST_FAILED');
    assert.equal(graphqlFailure('x', 429, undefined, 7000).retryAfterMs, 7000);
  });

  test('error messages from Wiz are scrubbed of registered secrets and cut short', async () => {
    const { Secret } = await import('../../src/secret.js');
    const secret = new Secret('s3cr3t-value-that-must-not-leak');
    const err = graphqlFailure('x', 200, body('BAD_USER_INPUT', `bad ${secret.reveal()} ${'y'.repeat(500)}`));
    assert.ok(!err.message.includes(secret.reveal()));
    assert.ok(err.message.length < 260, String(err.message.length));
  });

  test("the API URL from the token's dc claim, and the audience from the auth host", () => {
    const claims = { dc: 'us17', scope: 'read:service_accounts' };
    const token = `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
    assert.deepEqual(jwtClaims(token), claims);
    assert.equal(jwtClaims('not-a-jwt'), undefined);
    assert.equal(jwtClaims('a.!!!.c'), undefined);
    assert.equal(apiUrlFor('https://auth.app.wiz.io/oauth/token', 'us17'), 'https://api.us17.app.wiz.io/graphql');
    assert.equal(audienceFor('https://auth.app.wiz.io/oauth/token'), 'wiz-api');
    assert.equal(audienceFor('https://auth.gov.wiz.io/oauth/token'), 'wiz-api');
    assert.equal(audienceFor('https://auth.wiz.io/oauth/token'), 'beyond-api');
  });
});

describe('Wiz for Gov and umbrella scopes', () => {
  test('a token from auth.app.wiz.us finds its API at api.<dc>.app.wiz.us; commercial and legacy hosts at app.wiz.io', () => {
    assert.equal(apiUrlFor('https://auth.app.wiz.us/oauth/token', 'us2'), 'https://api.us2.app.wiz.us/graphql');
    assert.equal(apiUrlFor('https://AUTH.APP.WIZ.US/oauth/token', 'us1'), 'https://api.us1.app.wiz.us/graphql');
    assert.equal(apiUrlFor('https://auth.app.wiz.io/oauth/token', 'eu1'), 'https://api.eu1.app.wiz.io/graphql');
    assert.equal(apiUrlFor('https://auth.wiz.io/oauth/token', 'us3'), 'https://api.us3.app.wiz.io/graphql');
    // Hosts whose API host is not known keep the commercial one (the record sets wiz_api_url otherwise).
    assert.equal(apiUrlFor('https://auth.gov.wiz.io/oauth/token', 'us1'), 'https://api.us1.app.wiz.io/graphql');
    assert.equal(apiUrlFor('https://localhost:8443/oauth/token', 'us17'), 'https://api.us17.app.wiz.io/graphql');
    // The dc claim is Wiz's word, but never a path to another host.
    for (const dc of ['evil.example/x', 'us1.attacker.example', '', 'US1']) assert.throws(() => apiUrlFor('https://auth.app.wiz.us/oauth/token', dc), /not a Wiz data centre/);
  });

  test('umbrella scopes grant what they include; other resources and other verbs do not', () => {
    assert.deepEqual(missingScopes(['read:service_accounts', 'update:service_accounts']), []);
    assert.deepEqual(missingScopes(['admin:all']), []);
    assert.deepEqual(missingScopes(['read:all', 'write:all']), []);
    assert.deepEqual(missingScopes(['read:all', 'update:all']), []);
    assert.deepEqual(missingScopes(['read:service_accounts', 'write:service_accounts']), []);
    assert.deepEqual(missingScopes(['read:all']), ['update:service_accounts']);
    assert.deepEqual(missingScopes(['write:all']), ['read:service_accounts']);
    assert.deepEqual(missingScopes(['read:issues', 'write:issues', 'create:all', 'delete:all', 'create:service_accounts']), ['read:service_accounts', 'update:service_accounts']);
    assert.deepEqual(missingScopes([]), ['read:service_accounts', 'update:service_accounts']);
  });
});
