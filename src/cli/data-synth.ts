import type { Command } from './command.ts';
import { CtvlmError } from '../errors.ts';

export const command: Command = {
  name: 'data synth',
  summary: '(not yet implemented)',
  usage: 'ctvlm data synth',
  async run() {
    throw new CtvlmError('data synth: not implemented yet');
  },
};
