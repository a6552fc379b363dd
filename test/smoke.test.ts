import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from './helpers/paths.ts';
import { existsSync } from 'node:fs';

test('repository root has the kernels folder', () => {
  assert.ok(existsSync(`${repoRoot}/kernels`));
});

test.run();
