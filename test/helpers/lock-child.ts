// A second (third, ...) process for the lock race tests in test/state/lock.test.ts: it takes the lock of one
// record when told to, so that several processes race for it with only a line on stdin between them.
// stdin: "go <ms since the epoch>" waits (spinning, to start within microseconds of the others) until then,
// tries lockRecord and prints {"ok":true,"runId":...} or {"ok":false,"code":...}; "release" frees a
// lock it holds and prints {"released":true}; the end of stdin ends the process.
import { createInterface } from 'node:readline';
import { isRotateError } from '../../src/errors.js';
import { type RecordLock, lockRecord } from '../../src/state/lock.js';

const [dir, uid] = process.argv.slice(2) as [string, string];
let held: RecordLock | undefined;
const say = (v: unknown) => process.stdout.write(JSON.stringify(v) + '\n');

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.startsWith('go ')) {
    const at = Number(line.slice(3));
    while (performance.timeOrigin + performance.now() < at) {
      // spin: a timer would wake each process up to a millisecond apart
    }
    try {
      held = lockRecord(dir, uid, Date.now() + 3_600_000);
      say({ ok: true, runId: held.runId, pid: process.pid });
    } catch (err) {
      say({ ok: false, code: isRotateError(err) ? err.code : String(err) });
    }
  } else if (line === 'release') {
    held?.release();
    held = undefined;
    say({ released: true });
  }
});
say({ ready: true });
