// One request to a sandbox's control API (JSON in, JSON out), as the sandbox tests make them.

/** The reply's status and parsed JSON body (typed loosely: each test reads the fields it asserts on). */
export interface ControlReply {
  status: number;
  body: any;
}

export async function controlCall(baseUrl: string, method: string, path: string, body?: unknown): Promise<ControlReply> {
  const res = await fetch(baseUrl + path, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}
