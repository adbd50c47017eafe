// The gateway script this target makes: what src/entrypoints/azure-app-secret.ts runs alone and the
// keeper-rotate executable runs as `keeper-rotate azure-app-secret`.
import { rotationScript } from '../../pipeline/rotate.js';
import { azureAppSecret } from './index.js';

export const script = rotationScript(azureAppSecret);
