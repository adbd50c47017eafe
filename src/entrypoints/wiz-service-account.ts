import { script } from '../targets/wiz-service-account/script.js';
import { startScript } from './entry.js';

startScript(script);
