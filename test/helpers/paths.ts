// Locations the tests use. Real CT files live outside the project (../shared/data beside the
// checkout, or CTVLM_SHARED_DATA); tests that need them skip with a message when absent.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from .build/test/..., bundled; walk up to package.json). */
export const repoRoot: string = (() => {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  while (!existsSync(resolve(dir, 'package.json')) || !existsSync(resolve(dir, 'kernels'))) {
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('test/helpers/paths: cannot find the repository root');
    dir = up;
  }
  return dir;
})();

/** The shared real-CT folder, or null when it is absent (tests then skip with a message). */
export const sharedData: string | null = (() => {
  const dir = process.env.CTVLM_SHARED_DATA ?? resolve(repoRoot, '../shared/data');
  return existsSync(dir) ? dir : null;
})();

/** Logs why a test that needs the real CT data is skipped; returns true when it must skip. */
export function skipWithoutSharedData(what: string): boolean {
  if (sharedData) return false;
  console.log(`  skip: ${what} needs the real CT files in ../shared/data (or CTVLM_SHARED_DATA); not found`);
  return true;
}
