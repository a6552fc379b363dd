import type { Command } from './command.ts';
import { CtvlmError } from '../errors.ts';

export const command: Command = {
  name: 'demo',
  summary: '(not yet implemented)',
  usage: 'ctvlm demo',
  async run() {
    throw new CtvlmError('demo: not implemented yet');
  },
};
