// The sandbox's control API: the hooks real services do not have (seed state, read it back, arm faults, count
// requests). Plain HTTP on 127.0.0.1 only; it is for tests, the demo and users trying records, never exposed.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FAULT_KINDS, type FaultPlan, type FaultSpec, type RequestLog } from './faults.js';
import { readBody } from './service.js';

export type ControlHandler = (input: { params: Record<string, string>; body: unknown; query: URLSearchParams }) => unknown | Promise<unknown>;

interface ControlRoute {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: ControlHandler;
}

/** A control-API error with the HTTP status to answer with. */
export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A request body as an object: absent or null is empty, anything else that is not an object is a 400. */
export function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new ControlError(400, 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ControlError(400, `"${key}" must be a string`);
  return v;
}

export function requiredString(body: Record<string, unknown>, key: string): string {
  const v = optionalString(body, key);
  if (v === undefined) throw new ControlError(400, `"${key}" is required`);
  return v;
}

export class ControlApi {
  #routes: ControlRoute[] = [];

  constructor(faults: FaultPlan, log: RequestLog) {
    this.route('GET', '/faults', () => faults.pending());
    this.route('POST', '/faults', ({ body }) => {
      const specs = Array.isArray(body) ? body : [body];
      for (const spec of specs) faults.arm(parseFault(spec));
      return faults.pending();
    });
    this.route('DELETE', '/faults', () => {
      faults.clear();
      return [];
    });
    this.route('GET', '/requests', ({ query }) => {
      const filter: { service?: string; operation?: string } = {};
      const service = query.get('service');
      const operation = query.get('operation');
      if (service) filter.service = service;
      if (operation) filter.operation = operation;
      return log.entries(filter);
    });
    this.route('DELETE', '/requests', () => {
      log.clear();
      return [];
    });
  }

  /** Registers a route; `:name` segments become params. */
  route(method: string, path: string, handler: ControlHandler): void {
    const keys: string[] = [];
    const pattern = new RegExp(
      '^' +
        path.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
          keys.push(key);
          return '([^/]+)';
        }) +
        '$',
    );
    this.#routes.push({ method, pattern, keys, handler });
  }

  routes(): string[] {
    return this.#routes.map((r) => `${r.method} ${r.pattern.source.slice(1, -1).replace(/\(\[\^\/\]\+\)/g, ':param')}`);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control');
    const send = (status: number, value: unknown) => {
      const body = JSON.stringify(value, null, 2);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    try {
      const raw = await readBody(req, 4 * 1024 * 1024);
      if (raw === undefined) return send(413, { error: 'request too large' });
      let body: unknown;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          return send(400, { error: 'body is not JSON' });
        }
      }
      for (const r of this.#routes) {
        if (r.method !== req.method) continue;
        const m = r.pattern.exec(url.pathname);
        if (!m) continue;
        const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1]!)]));
        return send(200, (await r.handler({ params, body, query: url.searchParams })) ?? null);
      }
      send(404, { error: `no control route ${req.method} ${url.pathname}`, routes: this.routes() });
    } catch (err) {
      if (err instanceof ControlError) return send(err.status, { error: err.message });
      send(400, { error: err instanceof Error ? err.message : String(err) });
    }
  }

  async listen(port = 0): Promise<{ url: string; close(): Promise<void> }> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const { port: bound } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${bound}`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }
}

function parseFault(input: unknown): FaultSpec {
  if (!input || typeof input !== 'object') throw new ControlError(400, 'a fault is a JSON object');
  const spec = input as Record<string, unknown>;
  if (typeof spec.service !== 'string' || typeof spec.operation !== 'string') throw new ControlError(400, 'a fault needs "service" and "operation" strings');
  if (!FAULT_KINDS.includes(spec.kind as never)) throw new ControlError(400, `"kind" must be one of ${FAULT_KINDS.join(', ')}`);
  return spec as unknown as FaultSpec;
}
