// The pure parts of the Wiz target: when a run rotates, which expiry it sets, and how Wiz's replies map to
// error codes and URLs. Checked here without a network; the end-to-end file runs them against the sandbox.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideRotation, formatSpan, isExpired, newExpiry, sameInstant } from '../../src/targets/wiz-service-account/schedule.js';
import { apiUrlFor, audienceFor, graphqlFailure, jwtClaims } from '../../src/targets/wiz-service-account/wiz-api.js';

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

  test('GraphQL error codes map to stable RotateError codes; only transient ones are retried', () => {
    const cases: Array<[string, number, string, boolean]> = [
      ['UNAUTHENTICATED', 401, 'TARGET_AUTH_FAILED', false],
      ['UNAUTHORIZED', 200, 'TARGET_PERMISSION_DENIED', false],
      ['FORBIDDEN_IP', 403, 'TARGET_PERMISSION_DENIED', false],
      ['NOT_FOUND', 200, 'TARGET_NOT_FOUND', false],
      ['RATE_LIMIT_EXCEEDED', 429, 'TARGET_THROTTLED', true],
      ['BAD_USER_INPUT', 400, 'TARGET_REQUEST_FAILED', false],
      ['INTERNAL', 500, 'TARGET_REQUEST_FAILED', true],
    ];
    for (const [wizCode, status, code, transient] of cases) {
      const err = graphqlFailure('reading it', status, body(wizCode));
      assert.equal(err.code, code, wizCode);
      assert.equal(err.transient, transient, wizCode);
      assert.match(err.message, new RegExp(`^reading it: ${wizCode} \\(something\\)`));
    }
    assert.match(graphqlFailure('x', 200, body('UNAUTHORIZED')).message, /read:service_accounts and update:service_accounts/);
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
    assert.equal(apiUrlFor('us17'), 'https://api.us17.app.wiz.io/graphql');
    assert.equal(audienceFor('https://auth.app.wiz.io/oauth/token'), 'wiz-api');
    assert.equal(audienceFor('https://auth.gov.wiz.io/oauth/token'), 'wiz-api');
    assert.equal(audienceFor('https://auth.wiz.io/oauth/token'), 'beyond-api');
  });
});
