// The HTTP layer every sandbox service shares: a service only maps a parsed request to an operation and a
// reply; this module serves it over HTTP or HTTPS on loopback, applies armed faults, and logs each call.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultPlan, FaultSpec, RequestLog } from './faults.js';
import { type Budget, RateLimiter } from './rate-limit.js';
import type { TlsMaterial } from './tls.js';

export interface SandboxRequest {
  method: string;
  /** Path without the query string, percent-decoding left to the service. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface Route {
  /** The name faults and the request log use for this call. */
  operation: string;
  /**
   * Whose request budget the call is charged to, as the real service counts callers (AWS: the account the
   * signing key belongs to; Graph: the app and tenant of the bearer token). Undefined: not charged, e.g. a
   * request that will fail authentication anyway.
   */
  client?: string;
  /** What the call costs against each of the service's limits, by limit name (default 1 for every limit). */
  cost?: Record<string, number>;
  handle(): Reply | Promise<Reply>;
}

/** Why a call was throttled, for services whose throttle reply says (Graph's x-ms-throttle-* headers). */
export interface ThrottleContext {
  client: string;
  /** The name of the limit the call exceeded. */
  limit: string;
}

export interface SandboxService {
  readonly name: string;
  /** Map a request to an operation, or undefined for a 404. */
  route(req: SandboxRequest): Route | undefined;
  /** What this service answers when it throttles a caller (a `throttle` fault, or its budget ran dry). */
  throttleReply(retryAfterSeconds: number, context?: ThrottleContext): Reply;
  /** The per-caller request budget `serve` enforces before it handles a call; none: never throttled. */
  readonly budget?: RequestBudget | undefined;
  /** What a corrupted 200 looks like for this service (defaults to half a body of noise). */
  corruptReply?(reply: Reply): Reply;
}

export interface RunningService {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface ServeOptions {
  service: SandboxService;
  faults: FaultPlan;
  log: RequestLog;
  /** Serve HTTPS with this certificate; plain HTTP without. */
  tls?: TlsMaterial;
  port?: number;
  /** Largest request body accepted; larger requests get 413 without reaching the service. */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY = 2 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

export interface BudgetLimit {
  /** The name the control API and the throttle reply use (`requests`, `resourceUnits`, `writes`). */
  name: string;
  budget: Budget;
}

export type BudgetDecision = { ok: true } | { ok: false; retryAfterSeconds: number; limit: string };

/**
 * A service's request budget: one token bucket per limit (rate-limit.ts), each holding a bucket per caller. A
 * call is charged to every limit its route costs anything against, and refused (with the longest wait any
 * refusing limit names) if one of them cannot pay; the limits that could pay are charged all the same, as a
 * request that reached the service's front door counts against it whether or not it was served (Graph: "all
 * requests accrue against your usage limits", https://learn.microsoft.com/graph/throttling). The clock is
 * performance.now() unless a test fixes it: with a clock that stands still nothing refills, so exactly `burst`
 * calls get through, however slow the machine.
 */
export class RequestBudget {
  readonly #limits = new Map<string, { limiter: RateLimiter; initial: Budget }>();
  enabled = true;

  constructor(limits: BudgetLimit[], now?: () => number) {
    for (const l of limits) this.#limits.set(l.name, { limiter: new RateLimiter(l.budget, now), initial: { ...l.budget } });
  }

  take(client: string, cost: Record<string, number> = {}): BudgetDecision {
    let refused: { retryAfterSeconds: number; limit: string } | undefined;
    for (const [name, { limiter }] of this.#limits) {
      const n = cost[name] ?? 1;
      for (let i = 0; i < n; i++) {
        const verdict = limiter.take(client);
        if (verdict.ok) continue;
        if (!refused || verdict.retryAfterSeconds > refused.retryAfterSeconds) refused = { retryAfterSeconds: verdict.retryAfterSeconds, limit: name };
        break;
      }
    }
    return refused ? { ok: false, ...refused } : { ok: true };
  }

  /** Every limit's budget, by name. */
  limits(): Record<string, Budget> {
    return Object.fromEntries([...this.#limits].map(([name, l]) => [name, { ...l.limiter.budget }]));
  }

  /** Replaces one limit's budget (RateLimiter checks it); an unknown name is an error. */
  set(name: string, budget: Budget): void {
    const l = this.#limits.get(name);
    if (!l) throw new Error(`no limit named '${name}' (limits: ${[...this.#limits.keys()].join(', ')})`);
    l.limiter.budget = { burst: budget.burst, perSecond: budget.perSecond };
  }

  /** Every caller's bucket full again; with `budgets`, the limits as they were made too. */
  reset(options: { budgets?: boolean } = {}): void {
    for (const l of this.#limits.values()) {
      if (options.budgets) l.limiter.budget = { ...l.initial };
      l.limiter.reset();
    }
  }

  state(): { enabled: boolean; limits: Record<string, Budget> } {
    return { enabled: this.enabled, limits: this.limits() };
  }
}

function write(res: ServerResponse, reply: Reply): void {
  const body = reply.body === undefined ? Buffer.alloc(0) : Buffer.from(reply.body);
  res.writeHead(reply.status, { ...reply.headers, 'content-length': String(body.length) });
  res.end(body);
}

function defaultCorrupt(reply: Reply): Reply {
  const body = Buffer.from(reply.body ?? '');
  const noise = Buffer.from(body.subarray(0, Math.max(1, Math.floor(body.length / 2))));
  for (let i = 0; i < noise.length; i += 3) noise[i] = noise[i]! ^ 0x5a;
  return { ...reply, status: 200, body: noise };
}

/** Starts one service on 127.0.0.1 and resolves once it listens. */
export async function serve(options: ServeOptions): Promise<RunningService> {
  const { service, faults, log } = options;
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const sockets = new Set<Socket>();

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const t = performance.now();
    const body = await readBody(req, limit);
    if (body === undefined) {
      log.record({ service: service.name, operation: '(too large)', status: 413, t });
      write(res, json(413, { error: 'request_too_large' }));
      return;
    }
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const request: SandboxRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body };
    const route = service.route(request);
    if (!route) {
      log.record({ service: service.name, operation: '(unknown)', status: 404, t });
      write(res, json(404, { error: 'not_found', path: url.pathname }));
      return;
    }
    // The budget comes first: a real service throttles at its front door, before the call is applied, and a
    // throttled call never reaches the fault plan (it counts no `nth`).
    const budget = service.budget;
    if (budget?.enabled && route.client !== undefined) {
      const decision = budget.take(route.client, route.cost);
      if (!decision.ok) {
        const reply = service.throttleReply(decision.retryAfterSeconds, { client: route.client, limit: decision.limit });
        log.record({ service: service.name, operation: route.operation, status: reply.status, t, throttled: true });
        write(res, reply);
        return;
      }
    }
    const fault = faults.take(service.name, route.operation);
    if (fault && (fault.kind === 'truncate' || fault.kind === 'trickle' || fault.kind === 'oversize')) {
      const bytes = await stream(fault, route, res);
      log.record({ service: service.name, operation: route.operation, status: fault.kind === 'truncate' ? 0 : 200, t, fault: fault.kind, bytes });
      return;
    }
    const reply = await applyFault(fault, route, service, res, request);
    log.record({ service: service.name, operation: route.operation, status: reply?.status ?? 0, t, ...(fault ? { fault: fault.kind } : {}) });
    if (reply && !res.destroyed) write(res, reply);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handler(req, res).catch((err: unknown) => {
      // A sandbox bug must show up as a 500 the client sees, not as a hung request.
      if (!res.headersSent && !res.destroyed) write(res, json(500, { error: 'sandbox_error', message: String(err) }));
    });
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, onRequest)
    : createHttpServer(onRequest);
  server.on('connection', (socket: Socket) => {
    log.connected(service.name, (socket.remoteAddress ?? '').replace(/^::ffff:/, ''), socket.remotePort ?? 0);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = options.tls ? 'https' : 'http';
  // TLS clients check the name against the certificate; `localhost` is in its SAN and is what users type.
  const host = options.tls ? 'localhost' : '127.0.0.1';
  return {
    name: service.name,
    url: `${scheme}://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Replies that go wrong in transit or never end: `truncate` (the call applied, half its reply sent under the full
 * Content-Length, then the connection closed, as a proxy that dies mid-reply leaves it), `trickle` (a 200 whose
 * JSON body arrives a byte every 100 ms, forever), `oversize` (a 200 streaming `bytes` of JSON as fast as the
 * client reads). Resolves with the body bytes the client took before it hung up.
 */
async function stream(fault: FaultSpec, route: Route, res: ServerResponse): Promise<number> {
  let sent = 0;
  const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
  const put = async (chunk: Buffer): Promise<boolean> => {
    if (res.destroyed || res.writableEnded) return false;
    const ok = res.write(chunk);
    sent += chunk.length;
    if (!ok) await Promise.race([new Promise((resolve) => res.once('drain', resolve)), closed]);
    return !res.destroyed;
  };
  if (fault.kind === 'truncate') {
    const reply = await route.handle();
    const body = Buffer.from(reply.body ?? '');
    res.writeHead(reply.status, { ...reply.headers, 'content-length': String(body.length) });
    await put(body.subarray(0, Math.floor(body.length / 2)));
    res.socket?.destroy();
    return sent;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  if (fault.kind === 'trickle') {
    await put(Buffer.from('{'));
    while (!res.destroyed) {
      await Promise.race([sleep(100), closed]);
      if (!(await put(Buffer.from(' ')))) break;
    }
    return sent;
  }
  const total = fault.bytes ?? 64 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  if (!(await put(Buffer.from('{"filler":"')))) return sent;
  while (sent < total) if (!(await put(chunk))) return sent;
  res.end('"}');
  return sent;
}

/** A `delay` fault's wait: `delayMs`, or until its `release` settles if that comes first. */
async function hold(fault: FaultSpec): Promise<void> {
  if (!fault.release) return sleep(fault.delayMs ?? 0);
  const stop = new AbortController();
  await Promise.race([sleep(fault.delayMs ?? 0, undefined, { signal: stop.signal }).catch(() => undefined), fault.release.then(() => undefined, () => undefined)]);
  stop.abort();
}

async function applyFault(fault: FaultSpec | undefined, route: Route, service: SandboxService, res: ServerResponse, request: SandboxRequest): Promise<Reply | undefined> {
  if (!fault) return route.handle();
  switch (fault.kind) {
    case 'delay':
    {
      await hold(fault);
      // A real server still applies a request whose client gave up waiting: so does the sandbox.
      const reply = await route.handle();
      return res.destroyed ? undefined : reply;
    }
    case 'throttle':
      return service.throttleReply(fault.retryAfterSeconds ?? 1);
    case 'status': {
      const made = fault.after || fault.replyBody ? await route.handle() : undefined;
      if (fault.replyBody) return { status: fault.status ?? 500, headers: { ...made!.headers, ...fault.headers }, body: made!.body ?? '' };
      const text = (b: Buffer | string | undefined) => (b === undefined ? '' : Buffer.from(b).toString('utf8'));
      // A function replacement: `$&` and friends in a body must stay literal. `:json` escapes for a JSON string.
      const body = (fault.body ?? '').replace(/\{\{(request|reply)(:json)?\}\}/g, (_, which: string, asJson: string | undefined) => {
        const t = which === 'request' ? text(request.body) : text(made?.body);
        return asJson ? JSON.stringify(t).slice(1, -1) : t;
      });
      return { status: fault.status ?? 500, headers: { 'content-type': 'application/json', ...fault.headers }, body };
    }
    case 'drop':
      if (fault.after) await route.handle();
      res.socket?.destroy();
      return undefined;
    case 'corrupt': {
      const reply = await route.handle();
      return (service.corruptReply ?? defaultCorrupt)(reply);
    }
    case 'truncate':
    case 'trickle':
    case 'oversize':
      throw new Error(`${fault.kind} is streamed, not answered`);
  }
}
