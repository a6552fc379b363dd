#!/usr/bin/env node
// The `ctvlm` command: a thin dispatcher over src/cli/*.ts.
import { UsageError } from './app-errors.ts';
import { FrameworkError } from './errors.ts';
import type { Command } from './cli/command.ts';

const commands: Record<string, () => Promise<{ command: Command }>> = {
  'data synth': () => import('./cli/data-synth.ts'),
  'data inspect': () => import('./cli/data-inspect.ts'),
  'data mine': () => import('./cli/data-mine.ts'),
  'data manifest': () => import('./cli/data-manifest.ts'),
  demo: () => import('./cli/demo.ts'),
  train: () => import('./cli/train.ts'),
  eval: () => import('./cli/eval.ts'),
  report: () => import('./cli/report.ts'),
  profile: () => import('./cli/profile.ts'),
  tune: () => import('./cli/tune.ts'),
  ablate: () => import('./cli/ablate.ts'),
  quickstart: () => import('./cli/quickstart.ts'),
  web: () => import('./cli/web.ts'),
  embed: () => import('./cli/embed.ts'),
  localize: () => import('./cli/localize.ts'),
  classify: () => import('./cli/classify.ts'),
  retrieve: () => import('./cli/retrieve.ts'),
  'weights inspect': () => import('./cli/weights.ts'),
  model: () => import('./cli/model.ts'),
};

async function help(): Promise<void> {
  console.log('usage: ctvlm <command> [options]\n\ncommands:');
  for (const [name, load] of Object.entries(commands)) {
    const { command } = await load();
    console.log(`  ${name.padEnd(16)} ${command.summary}`);
  }
  console.log('\n`ctvlm help <command>` shows a command\'s options.');
}

/** The commands of a group ("data", "weights"): `ctvlm help data` and `ctvlm data` list them. */
async function groupHelp(group: string): Promise<boolean> {
  const names = Object.keys(commands).filter((n) => n.startsWith(`${group} `));
  if (names.length === 0) return false;
  console.log(`ctvlm ${group} commands:`);
  for (const name of names) console.log(`  ${name.padEnd(16)} ${(await commands[name]()).command.summary}`);
  console.log(`\n\`ctvlm help ${names[0]}\` shows a command's options.`);
  return true;
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    await help();
    return 0;
  }
  if (argv[0] === 'help') {
    const key = argv.slice(1).join(' ');
    if (!commands[key]) {
      if (key && (await groupHelp(key))) return 0;
      if (key) console.error(`ctvlm: unknown command '${key}'`);
      await help();
      return key ? 2 : 0;
    }
    console.log((await commands[key]()).command.usage);
    return 0;
  }
  // Longest matching command name wins ("data synth" over "data").
  const key = [2, 1].map((n) => argv.slice(0, n).join(' ')).find((k) => commands[k]);
  if (!key) {
    // A group name alone, or with --help: list its commands.
    if ((argv.length === 1 || argv[1] === '--help' || argv[1] === '-h') && (await groupHelp(argv[0]))) return argv.length === 1 ? 2 : 0;
    console.error(`ctvlm: unknown command '${argv.slice(0, 2).join(' ')}'`);
    await help();
    return 2;
  }
  const { command } = await commands[key]();
  const rest = argv.slice(key.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    return (await command.run(rest)) ?? 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`ctvlm ${key}: ${e.message}\n\n${command.usage}`);
      return 2;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof FrameworkError && !process.env.CTVLM_DEBUG) console.error(`ctvlm: ${e.message}`);
    else console.error(e);
    process.exit(1);
  },
);
