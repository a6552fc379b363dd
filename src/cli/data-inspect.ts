import type { Command } from './command.ts';
import { CtvlmError } from '../errors.ts';

export const command: Command = {
  name: 'data inspect',
  summary: '(not yet implemented)',
  usage: 'ctvlm data inspect',
  async run() {
    throw new CtvlmError('data inspect: not implemented yet');
  },
};
