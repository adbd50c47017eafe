import { script } from '../targets/azure-app-secret/script.js';
import { startScript } from './entry.js';

startScript(script);
