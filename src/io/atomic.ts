// Files written whole or not at all: under a temporary name (`<path>.tmp-<pid>`), synced, then
// renamed into place, so that a reader, or a run killed mid-write, sees the old content or the
// whole new one, never a part. Node only.
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';

/** Writes a file so that readers see the old content or the whole new one, never a part. */
export async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** Leftovers of writes interrupted by a kill (`*.tmp-<pid>`) in `dir`: never complete, safe to remove. */
export async function removeTemporaries(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const f of await readdir(dir)) if (/\.tmp-\d+$/.test(f)) await rm(join(dir, f), { recursive: true, force: true });
}

/**
 * A JSON file of a run or checkpoint folder, parsed.
 * @throws DataError naming the file and `field` when it cannot be read or is not JSON (a file
 * edited by hand or cut short by something other than writeAtomic).
 */
export async function readJsonFile<T>(path: string, field: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new DataError(path, field, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `cannot be read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new DataError(path, field, `not valid JSON (${(e as Error).message})`);
  }
}
