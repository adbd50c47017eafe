// `npm run sandbox -- --dir DIR [--transaction-model pending|immediate]`: starts the local sandbox (KSM and
// the target services) on loopback with the demo vault, writes what a script needs into DIR, and runs until
// SIGINT or SIGTERM.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startSandbox } from '../src/sandbox/sandbox.js';
import { TRANSACTION_MODELS, type TransactionModel } from '../src/sandbox/ksm/index.js';

const { values } = parseArgs({
  options: { dir: { type: 'string' }, 'transaction-model': { type: 'string', default: 'pending' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help || !values.dir) {
  console.log('usage: npm run sandbox -- --dir DIR [--transaction-model pending|immediate]');
  process.exit(values.help ? 0 : 2);
}
const model = values['transaction-model'] as TransactionModel;
if (!TRANSACTION_MODELS.includes(model)) {
  console.error(`--transaction-model must be one of ${TRANSACTION_MODELS.join(', ')}`);
  process.exit(2);
}
const dir = resolve(values.dir);
const sandbox = await startSandbox({ dir, transactionModel: model });
console.log(`keeper-rotate sandbox running (KSM transaction model: ${model})`);
for (const [name, url] of Object.entries(sandbox.urls)) console.log(`  ${name.padEnd(8)} ${url}`);
console.log(`  control  ${sandbox.controlUrl}`);
console.log(`\nWrote ${dir}/{gateway-config.json,ca.pem,sandbox.json,env}. Try a fixture:`);
console.log(`  npm run replay -- fixtures/azure-app-secret.json --sandbox ${values.dir}`);
console.log('Stop with Ctrl-C.');
const stop = async () => {
  await sandbox.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
