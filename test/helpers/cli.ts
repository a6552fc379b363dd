// The built command (dist/cli.js) in a child process, as a user runs it.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './paths.ts';

/**
 * Runs `node dist/cli.js ...args` and returns its status, stdout and stderr (status null when
 * it was killed). The timeout only guards against a hang: on a machine whose Mesa shader cache
 * is cold, a run first compiles its pipelines with LLVM (`train --preset tiny --steps 4` took
 * 96 s on the family-26 EPYC with an empty cache, and the CLI test's run, which also sets a
 * second matmul variant, passed the former 120 s limit there), so the limit is 10 minutes.
 */
export function runCli(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(repoRoot, 'dist/cli.js'), ...args], { encoding: 'utf8', timeout: 600_000 });
}
