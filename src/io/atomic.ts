// Files written whole or not at all: under a temporary name (`<path>.tmp-<pid>`), synced, then
// renamed into place, so that a reader, or a run killed mid-write, sees the old content or the
// whole new one, never a part. Node only.
import { open, readdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

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
