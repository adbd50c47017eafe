// `npm run report -- ...`: the fleet report, the same command as `keeper-rotate report`. Not in src/entrypoints,
// where every file is a target's script.
import { startReport } from './process.js';

startReport(process.argv.slice(2));
