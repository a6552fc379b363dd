// What a trainer meets around resuming and evaluating a run folder: --steps below the
// checkpoint refused, a finished run resumed reports its checkpoint's loss and trains nothing,
// another dataset refused (the saved configuration untouched), the run's own dataset the
// default; one training process per run folder (RUN/.lock; a dead owner's lock taken over);
// missing volumes refused before the first step; a run no longer than its learning-rate
// warm-up said so; eval --split train keeping its file; eval of a folder that is not a
// checkpoint, and hand-broken run files, each one line naming the file.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.ts';
import { runCli } from '../helpers/cli.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { preset } from '../../src/train/config.ts';
import { train } from '../../src/train/trainer.ts';
import { RunLock } from '../../src/train/run-folder.ts';

const t = suite('resume');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-resume-'));
const data = join(dir, 'data');
const other = join(dir, 'other');
const run = join(dir, 'run');
const cfg = { ...preset('tiny'), steps: 6, checkpointEvery: 3 };
// The command's last line of stderr (Dawn prints its warnings before it).
const lastLine = (s: string) => s.trim().split('\n').at(-1);
const refused = async (p: Promise<unknown>, message: RegExp) =>
  p.then(
    () => assert.unreachable(`expected a refusal matching ${message}`),
    (e) => assert.match((e as Error).message, message),
  );

t.before(async () => {
  await writeSyntheticDataset({ out: data, n: 24, seed: 3, size: [64, 64], slices: [24, 32], gzipLevel: 0 });
  await writeSyntheticDataset({ out: other, n: 24, seed: 4, size: [64, 64], slices: [24, 32], gzipLevel: 0 });
});
t.after(() => rmSync(dir, { recursive: true, force: true }));

t('resume: --steps below the checkpoint refused; a finished run trains nothing and reports its loss; another dataset refused; its own the default', async () => {
  const gpu = await testGpu();
  const first = await train(gpu, { data, out: run, config: cfg });
  const saved = readFileSync(join(run, 'train-config.json'), 'utf8');
  await refused(train(gpu, { data, out: run, config: cfg, resume: true, stepsOverride: 4 }), /is at step 6 \(ckpt-0000006\): --steps 4 would end before it; give --steps 6 or more/);
  const lines: string[] = [];
  const again = await train(gpu, { out: run, config: cfg, resume: true, log: (l) => lines.push(l) });
  assert.is(again.steps, 6);
  assert.is(again.finalLoss, first.finalLoss, "the checkpoint's loss, not NaN");
  assert.ok(lines.some((l) => /the end of its 6 steps: nothing left to train/.test(l)), lines.join('\n'));
  await refused(train(gpu, { data: other, out: run, config: cfg, resume: true, stepsOverride: 9 }), /was trained on .*data \(run\.json\); --resume continues it on that dataset/);
  assert.is(readFileSync(join(run, 'train-config.json'), 'utf8'), saved, 'a refused resume leaves the configuration as it was');
  const saves: string[] = [];
  const longer = await train(gpu, { data: join(data, 'manifest.jsonl'), out: run, config: cfg, resume: true, stepsOverride: 9, checkpointEvery: 1, log: (l) => saves.push(l) });
  assert.is(longer.steps, 9, 'the same dataset named by its manifest file');
  assert.equal(saves.filter((l) => l.startsWith('checkpoint ')).map((l) => l.slice(-7)), ['0000007', '0000008', '0000009'], 'checkpointEvery applies to a resumed run');
  await refused(train(gpu, { out: join(dir, 'fresh'), config: cfg }), /--data is required/);
  const short: string[] = [];
  await train(gpu, { data, out: join(dir, 'short'), config: { ...cfg, steps: 2 }, log: (l) => short.push(l) });
  assert.ok(short.some((l) => /warms up over 2 steps and this run has 2, so it never decays/.test(l)), short.join('\n'));
});

t('one training process per run folder: a live owner refused, a dead one\'s lock taken over, the lock gone after the run', async () => {
  const gpu = await testGpu();
  const lockPath = join(run, '.lock');
  const mine = new RunLock(run);
  mine.acquire();
  assert.ok(existsSync(lockPath));
  await refused(train(gpu, { out: run, config: cfg, resume: true, stepsOverride: 10 }), new RegExp(`is being trained by process ${process.pid} on `));
  assert.ok(existsSync(lockPath), "a refused run leaves the owner's lock in place");
  mine.release();
  assert.not.ok(existsSync(lockPath));
  // A process that has exited: its lock is stale.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(lockPath, JSON.stringify({ pid: Number(gone.stdout), host: hostname(), started: 'then' }));
  const r = await train(gpu, { out: run, config: cfg, resume: true, stepsOverride: 10 });
  assert.is(r.steps, 10);
  assert.not.ok(existsSync(lockPath), 'released at the end');
  // A killed process stays a zombie until its parent reaps it; kill(pid, 0) still reaches it.
  // `sleep 0.1 &` under an `exec sleep 5` is never reaped while the test looks.
  if (existsSync('/proc/self/stat')) {
    const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5']);
    const zombie = Number(await new Promise<string>((done) => parent.stdout.once('data', (b) => done(String(b).trim()))));
    await new Promise((done) => setTimeout(done, 400));
    assert.match(readFileSync(`/proc/${zombie}/stat`, 'utf8'), /\) Z /, 'the child is a zombie');
    writeFileSync(lockPath, JSON.stringify({ pid: zombie, host: hostname(), started: 'then' }));
    assert.is((await train(gpu, { out: run, config: cfg, resume: true })).steps, 10, "a zombie's lock is taken over");
    parent.kill();
  } else console.log('  (no /proc here: the zombie case is not checked)');
  // Another host's lock cannot be checked: refused, saying so. An unreadable one (locks are
  // made whole, so it was not written by a run) is taken over.
  writeFileSync(lockPath, JSON.stringify({ pid: process.pid, host: `not-${hostname()}`, started: 'then' }));
  await refused(train(gpu, { out: run, config: cfg, resume: true }), /on not-.* \(another host: whether it still runs cannot be checked from here\)/);
  writeFileSync(lockPath, '');
  assert.is((await train(gpu, { out: run, config: cfg, resume: true })).steps, 10);
  assert.not.ok(existsSync(lockPath));
});

t('resume before the first checkpoint takes the recorded dataset; a mistyped --data names its missing manifest', async () => {
  const gpu = await testGpu();
  const early = join(dir, 'early');
  mkdirSync(early);
  writeFileSync(join(early, 'run.json'), JSON.stringify({ data }));
  const lines: string[] = [];
  const r = await train(gpu, { out: early, config: { ...cfg, steps: 2 }, resume: true, log: (l) => lines.push(l) });
  assert.is(r.steps, 2);
  assert.ok(lines.some((l) => l.startsWith(`no checkpoint in ${early}: starting from step 0`)));
  await refused(train(gpu, { data: join(dir, 'dta'), out: early, config: cfg, resume: true }), /dta: manifest: no manifest at/);
});

t('volumes missing from disk are refused before the first step, with how many and which', async () => {
  const gpu = await testGpu();
  const holes = join(dir, 'holes');
  cpSync(data, holes, { recursive: true });
  const entries = readFileSync(join(holes, 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const train0 = entries.filter((e) => (e.split ?? 'train') === 'train').slice(0, 2);
  for (const e of train0) rmSync(join(holes, e.volume));
  await refused(train(gpu, { data: holes, out: join(dir, 'holes-run'), config: cfg }), new RegExp(`manifest\\.jsonl: volume: 2 of the \\d+ train case\\(s\\) have no volume file: ${train0[0].id} \\(`));
  assert.not.ok(existsSync(join(dir, 'holes-run', 'latest')), 'no step was trained');
});

t('eval: --split train keeps its file; a folder that is not a checkpoint and hand-broken run files are one line naming the file', () => {
  const ev = runCli('eval', '--run', run, '--split', 'train', '--train-cases', '0', '--resamples', '20');
  assert.is(ev.status, 0, ev.stderr);
  assert.ok(existsSync(join(run, 'eval-train-full.json')), "the whole training split's own file");
  assert.match(readFileSync(join(run, 'report.html'), 'utf8'), 'Training split beside nothing');
  // The whole training split's evaluation does not replace the training subset that goes with
  // the test evaluation (both were eval-train.json once).
  const test = runCli('eval', '--run', run, '--train-cases', '4', '--resamples', '20');
  assert.is(test.status, 0, test.stderr);
  assert.match(readFileSync(join(run, 'report.html'), 'utf8'), 'Test split beside a same-size subset');
  assert.is(runCli('eval', '--run', run, '--split', 'train', '--train-cases', '0', '--resamples', '20').status, 0);
  assert.is(runCli('report', run).status, 0);
  assert.match(readFileSync(join(run, 'report.html'), 'utf8'), 'Test split beside a same-size subset');
  // --checkpoint takes a checkpoint's name inside the run folder too.
  const named = runCli('eval', '--run', run, '--checkpoint', 'ckpt-0000009', '--train-cases', '0', '--resamples', '20');
  assert.is(named.status, 0, named.stderr);
  assert.match(named.stdout, /checkpoint .*ckpt-0000009 \(step 9\)/);
  const notCkpt = runCli('eval', '--run', run, '--checkpoint', join(run, 'plots'));
  assert.is(notCkpt.status, 1);
  assert.is(lastLine(notCkpt.stderr), `ctvlm: ${join(run, 'plots')}: model.safetensors: missing: not a checkpoint folder (a ckpt-NNNNNNN folder of a run written by \`ctvlm train\`)`);
  const none = runCli('eval', '--run', run, '--checkpoint', join(run, 'nope'));
  assert.is(lastLine(none.stderr), `ctvlm: ${join(run, 'nope')}: checkpoint: does not exist`);
  writeFileSync(join(run, 'run.json'), '{"data": ');
  const broken = runCli('eval', '--run', run);
  assert.is(broken.status, 1);
  assert.match(lastLine(broken.stderr)!, new RegExp(`^ctvlm: ${join(run, 'run.json')}: run: not valid JSON \\(.*\\)$`));
  writeFileSync(join(run, 'train-config.json'), '{');
  const cfgBroken = runCli('train', '--out', run, '--resume', '--no-eval');
  assert.is(cfgBroken.status, 1);
  assert.match(lastLine(cfgBroken.stderr)!, new RegExp(`^ctvlm: ${join(run, 'train-config.json')}: config: not valid JSON \\(.*\\)$`));
});

t.run();
