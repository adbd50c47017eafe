import { rotationScript } from '../pipeline/rotate.js';
import { azureAppSecret } from '../targets/azure-app-secret/index.js';
import { startScript } from './entry.js';

startScript(rotationScript(azureAppSecret));
