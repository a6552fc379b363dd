import type { Command } from './command.ts';
import { CtvlmError } from '../errors.ts';

export const command: Command = {
  name: 'data mine',
  summary: '(not yet implemented)',
  usage: 'ctvlm data mine',
  async run() {
    throw new CtvlmError('data mine: not implemented yet');
  },
};
