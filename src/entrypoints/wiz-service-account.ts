import { rotationScript } from '../pipeline/rotate.js';
import { ADMIN_HELP, wizServiceAccount } from '../targets/wiz-service-account/index.js';
import { startScript } from './entry.js';

const script = rotationScript(wizServiceAccount);
startScript({ ...script, help: `${script.help}\n${ADMIN_HELP}` });
