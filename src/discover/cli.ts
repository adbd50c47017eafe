// `npm run discover -- aws|azure|wiz [options]`: the discover subcommand of the keeper-rotate executable, run from
// the source (src/discover/main.ts).
import { runDiscover } from './main.js';

runDiscover(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr }).then(
  (r) => {
    process.exitCode = r.exitCode;
  },
  (err: unknown) => {
    process.stderr.write(`keeper-rotate: INTERNAL: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
