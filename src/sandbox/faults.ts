// Faults the sandbox can inject into any service's operation. Each service names its operations (the KSM
// endpoint, the Graph action, the IAM Action, the GraphQL field), so one plan format covers all of them and the
// fault matrix can walk "every call of a rotation" without knowing any protocol.

/** Faults of the call itself (the reply-corpus kinds below are about what comes back). */
export const TRANSPORT_FAULT_KINDS = ['status', 'throttle', 'delay', 'drop', 'corrupt'] as const;
export const FAULT_KINDS = [...TRANSPORT_FAULT_KINDS, 'truncate', 'trickle', 'oversize'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultSpec {
  /** Service name as registered (`ksm`, `azure`, and later `iam`, `sts`, `wiz-auth`, `wiz-api`). */
  service: string;
  /** Operation name within the service, or `*` for any. */
  operation: string;
  /** Fire on the Nth matching call counted from when the fault was armed (1 = the next call). */
  nth?: number;
  /** How many consecutive matching calls fire, starting at the Nth (default 1). */
  times?: number;
  kind: FaultKind;
  /**
   * For `status`: the HTTP status and body to answer with. In the body, `{{request}}` stands for the request's
   * body and, with `after`, `{{reply}}` for the reply the service made: an error page that echoes what it was
   * sent, or a reply mangled around the secret it carries (the secret-hygiene tests need both); `{{reply:json}}`
   * and `{{request:json}}` escape the text for use inside a JSON string.
   */
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** For `delay`: how long to hold the request before handling it (a hang is a delay past the client's timeout). */
  delayMs?: number;
  /**
   * For `delay`, in-process only (not through the control API): stop holding as soon as this settles, `delayMs`
   * then only bounds the hold. Lets a test hold one client at a call until another client has done something,
   * however slow the machine is (test/reliability/concurrency.test.ts).
   */
  release?: Promise<unknown>;
  /**
   * For `status` and `drop`: apply the request first, then fail the reply. This is the nasty case where the
   * server changed state but the client cannot know. `corrupt` is always after.
   */
  after?: boolean;
  /** For `throttle`: the retry-after value the service advertises, in seconds. */
  retryAfterSeconds?: number;
  /**
   * For `status`: answer with the service's own reply body (the call is applied first), under `status` and
   * `headers`: a success body behind an error status, or behind the wrong content type.
   */
  replyBody?: boolean;
  /**
   * For `oversize`: how many bytes of body to stream (default 64 MiB), in chunks as fast as the client takes
   * them; the log entry records how many it took before it hung up. `truncate` applies the call and sends half
   * its reply under the full Content-Length, then closes the connection; `trickle` sends a 200 whose body comes
   * one byte at a time and never ends.
   */
  bytes?: number;
}

interface ArmedFault {
  spec: FaultSpec;
  seen: number;
  fired: number;
}

type FireListener = (fault: FaultSpec) => void;

export class FaultPlan {
  #armed: ArmedFault[] = [];
  #listeners: FireListener[] = [];

  /**
   * Called as a fault fires, before the service handles the call: with a `delay` fault this is the moment a
   * client is waiting on that call, which is how the crash tests kill a script mid-call.
   */
  onFire(listener: FireListener): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  arm(spec: FaultSpec): void {
    if (!FAULT_KINDS.includes(spec.kind)) throw new Error(`unknown fault kind: ${String(spec.kind)}`);
    if (!spec.service || !spec.operation) throw new Error('a fault needs a service and an operation');
    const nth = spec.nth ?? 1;
    if (!Number.isInteger(nth) || nth < 1) throw new Error('nth must be a positive integer');
    this.#armed.push({ spec: { ...spec, nth, times: spec.times ?? 1 }, seen: 0, fired: 0 });
  }

  clear(): void {
    this.#armed = [];
  }

  /** Faults not yet fully fired, for the control API. */
  pending(): FaultSpec[] {
    return this.#armed.filter((a) => a.fired < (a.spec.times ?? 1)).map((a) => a.spec);
  }

  /** Called once per incoming call; returns the fault to apply to it, if any. */
  take(service: string, operation: string): FaultSpec | undefined {
    let chosen: FaultSpec | undefined;
    for (const a of this.#armed) {
      if (a.spec.service !== service) continue;
      if (a.spec.operation !== '*' && a.spec.operation !== operation) continue;
      a.seen += 1;
      const times = a.spec.times ?? 1;
      if (!chosen && a.seen >= (a.spec.nth ?? 1) && a.fired < times) {
        a.fired += 1;
        chosen = a.spec;
      }
    }
    this.#armed = this.#armed.filter((a) => a.fired < (a.spec.times ?? 1));
    if (chosen) for (const listener of this.#listeners) listener(chosen);
    return chosen;
  }
}

export interface RequestLogEntry {
  seq: number;
  service: string;
  operation: string;
  status: number;
  fault?: FaultKind;
  /** The service's own request budget refused the call (service.ts `RequestBudget`): not an armed fault. */
  throttled?: true;
  at: string;
  /** Reply body bytes the client took (for `oversize`, `trickle` and `truncate` faults). */
  bytes?: number;
  /**
   * performance.now() in the sandbox's process when the request arrived (when it was logged, if the service did
   * not say): a monotonic, sub-millisecond clock the bench, which runs the sandbox in-process, shares.
   */
  t: number;
}

/** A TCP connection a service accepted. */
export interface SandboxConnection {
  service: string;
  t: number;
  /** The peer's address and port as the service saw them (IPv4-mapped IPv6 addresses unwrapped). */
  remoteAddress: string;
  remotePort: number;
}

/** Every call each service saw, in order: the bench counts round trips and the tests prove "no call" with it. */
export class RequestLog {
  #entries: RequestLogEntry[] = [];
  #connections: SandboxConnection[] = [];
  #listeners: Array<(entry: RequestLogEntry) => void> = [];
  #seq = 0;

  record(entry: Omit<RequestLogEntry, 'seq' | 'at' | 't'> & { t?: number }): void {
    const full = { ...entry, seq: ++this.#seq, at: new Date().toISOString(), t: entry.t ?? performance.now() };
    this.#entries.push(full);
    for (const listener of this.#listeners) listener(full);
  }

  /**
   * Called as each call is logged, once the service has handled it and before the client has its reply: the
   * moment to judge an invariant that must hold after every single call (the fault matrix checks that a
   * destination still holds a working credential right after each removal).
   */
  onRecord(listener: (entry: RequestLogEntry) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  entries(filter?: { service?: string; operation?: string }): RequestLogEntry[] {
    return this.#entries.filter(
      (e) => (!filter?.service || e.service === filter.service) && (!filter?.operation || e.operation === filter.operation),
    );
  }

  /**
   * A client opened a connection to a service (over TLS, one handshake): the bench counts them per host, and the
   * proxy tests tell by the peer's address whether it came through the proxy (which connects from another
   * loopback address) or went around it.
   */
  connected(service: string, remoteAddress = '', remotePort = 0): void {
    this.#connections.push({ service, t: performance.now(), remoteAddress, remotePort });
  }

  connections(service?: string): SandboxConnection[] {
    return this.#connections.filter((c) => !service || c.service === service);
  }

  clear(): void {
    this.#entries = [];
    this.#connections = [];
  }
}
