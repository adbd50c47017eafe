// The gateway script this target makes: what src/entrypoints/wiz-service-account.ts runs alone and the
// keeper-rotate executable runs as `keeper-rotate wiz-service-account`.
import { rotationScript } from '../../pipeline/rotate.js';
import { ADMIN_HELP, wizServiceAccount } from './index.js';

const base = rotationScript(wizServiceAccount);
export const script = { ...base, help: `${base.help}\n${ADMIN_HELP}` };
