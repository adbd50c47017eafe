// Every reply this tool reads is bounded in size as well as in time. The services' real replies are a few KiB
// (a KSM record fetch of a handful of records, a Graph application, an IAM key list); a body past the cap is
// not one of them (a proxy's endless page, something in the middle streaming garbage), and reading it whole
// would hold memory until the request timeout. One cap for every client kind.
import { Transform, type TransformCallback } from 'node:stream';

export const MAX_REPLY_BYTES = 8 * 1024 * 1024;

export class ReplyTooLargeError extends Error {
  override readonly name = 'ReplyTooLargeError';
  constructor(what: string) {
    super(`${what}: the reply is over ${MAX_REPLY_BYTES / 1048576} MiB, so it is not the service's`);
  }
}

/** A pass-through that fails once more than the cap has passed (Node streams: the AWS SDK's reply bodies). */
export function capStream(what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > MAX_REPLY_BYTES) return done(new ReplyTooLargeError(what));
      done(null, chunk);
    },
  });
}
