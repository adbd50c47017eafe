import { script } from '../targets/aws-ecr-pull-secret/script.js';
import { startScript } from './entry.js';

startScript(script);
