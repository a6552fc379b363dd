// The run folder a training run writes, and `ctvlm eval`, `ctvlm ablate` and `ctvlm web` read:
// train-config.json, run.json (where the data is), tokenizer.json, metrics.jsonl, plots/,
// ckpt-<step>/ with `latest` (checkpoint.ts), eval-<split>.json (src/eval). Here: opening it
// for a new or a resumed run, and the configuration and tokenizer the run keeps in it.
import { existsSync, linkSync, readFileSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { DataError } from '../errors.ts';
import { CtvlmError, UsageError } from '../app-errors.ts';
import { readJsonFile, removeTemporaries, writeAtomic } from '../io/atomic.ts';
import type { CtDataset } from '../data/dataset.ts';
import { WordPieceTokenizer } from '../data/tokenizer.ts';
import { allPrompts } from '../data/prompts.ts';
import { toRadfinderJson } from '../model/config.ts';
import { zeroShotTexts } from '../model/tasks.ts';
import { latestCheckpoint, readRunState } from './checkpoint.ts';
import type { TrainConfig } from './config.ts';

/** The run folder's training configuration (the model's own config.json is in each checkpoint). */
export const TRAIN_CONFIG = 'train-config.json';

/** A dataset folder's manifest.jsonl, or the manifest file itself; a DataError when there is none. */
export function manifestPath(data: string): string {
  const p = existsSync(data) && statSync(data).isDirectory() ? join(data, 'manifest.jsonl') : data;
  if (!existsSync(p)) throw new DataError(data, 'manifest', `no manifest at ${p} (write one with \`ctvlm data synth --out ${data}\`)`);
  return p;
}

export interface RunFolderOptions {
  /** A dataset folder (with manifest.jsonl) or a manifest file; a resumed run defaults to its
   * own (run.json) and refuses another. */
  data?: string;
  out: string;
  config: TrainConfig;
  resume?: boolean;
  stepsOverride?: number;
}

/**
 * Opens `out` for a run: removes what interrupted writes left, and on resume reads the saved
 * configuration back (with a new step count when asked) and the dataset the run recorded;
 * refuses a folder that already holds a run otherwise. Writes nothing for a new run
 * (recordRunData does, once its data is checked).
 * Returns the configuration to train with, the checkpoint to resume from (null: a new run), its
 * step, and the dataset.
 * @throws CtvlmError for a resume with --steps below the checkpoint's step or with another
 * dataset than the run's, and for a new run in a folder that holds one; DataError for a run
 * folder file that is missing or not JSON; UsageError when no dataset is given or recorded.
 */
export async function openRunFolder(
  o: RunFolderOptions,
  log: (line: string) => void,
): Promise<{ cfg: TrainConfig; resumeFrom: string | null; step: number; data: string; stepsChanged: boolean }> {
  const out = o.out;
  let cfg = o.config;
  let data = o.data;
  let step = 0;
  let stepsChanged = false;
  await removeTemporaries(out);
  const resumeFrom = o.resume ? await latestCheckpoint(out) : null;
  if (o.resume && !resumeFrom) {
    log(`no checkpoint in ${out}: starting from step 0`);
    // Killed before its first checkpoint (in the text warm-up): its dataset is still recorded.
    data = await resumedData(out, data, log);
  }
  const cfgPath = join(out, TRAIN_CONFIG);
  if (resumeFrom) {
    if (!existsSync(cfgPath)) throw new DataError(cfgPath, 'config', 'missing: the run folder has checkpoints but no configuration');
    cfg = await readJsonFile<TrainConfig>(cfgPath, 'config');
    step = (await readRunState(resumeFrom)).step;
    const at = `${out} is at step ${step} (${basename(resumeFrom)})`;
    if (o.stepsOverride !== undefined && o.stepsOverride < step)
      throw new CtvlmError(`${at}: --steps ${o.stepsOverride} would end before it; give --steps ${step} or more, or evaluate it with \`ctvlm eval --run ${out}\``);
    data = await resumedData(out, data, log);
    if (o.stepsOverride !== undefined && o.stepsOverride !== cfg.steps) {
      log(`resuming with ${o.stepsOverride} steps instead of ${cfg.steps} (the learning-rate schedule follows the new length)`);
      cfg.steps = o.stepsOverride;
      // Saved by the trainer once the data is checked (saveTrainConfig): a refused run changes nothing.
      stepsChanged = true;
    }
    if (step >= cfg.steps) log(`${at}, the end of its ${cfg.steps} steps: nothing left to train (--steps N continues it to N)`);
  } else if (existsSync(join(out, 'latest'))) {
    throw new CtvlmError(`${out} already holds a run; continue it with --resume, or choose another --out`);
  }
  if (data === undefined) throw new UsageError(o.resume ? `--data is required: ${out} holds no run yet` : '--data is required');
  return { cfg, resumeFrom, step, data, stepsChanged };
}

/** Writes RUN/train-config.json. */
export async function saveTrainConfig(out: string, cfg: TrainConfig): Promise<void> {
  await writeAtomic(join(out, TRAIN_CONFIG), JSON.stringify(cfg, null, 1));
}

/** The dataset a run recorded (RUN/run.json), or null when it has none. */
export async function recordedRunData(run: string): Promise<string | null> {
  const p = join(run, 'run.json');
  if (!existsSync(p)) return null;
  const d = await readJsonFile<{ data?: unknown }>(p, 'run');
  if (typeof d?.data !== 'string') throw new DataError(p, 'data', 'missing: the run folder does not say where its dataset is');
  return d.data;
}

/** A dataset's manifest as a real path, or null when it has none (moved or deleted). */
export function realManifest(data: string): string | null {
  try {
    return realpathSync(manifestPath(data));
  } catch {
    return null;
  }
}

// A resumed run continues on its own dataset: another one would change the cases behind the
// data order and the splits half-way (and run.json would then name only the second).
async function resumedData(out: string, given: string | undefined, log: (line: string) => void): Promise<string | undefined> {
  const recorded = await recordedRunData(out);
  if (given === undefined || recorded === null) return given ?? recorded ?? undefined;
  const asked = realpathSync(manifestPath(given)); // a mistyped --data: its missing manifest named
  const own = realManifest(recorded);
  if (own === null) {
    log(`the run's dataset ${recorded} (run.json) has no manifest any more: continuing on ${given}`);
    return given;
  }
  if (own !== asked)
    throw new CtvlmError(`${out} was trained on ${recorded} (run.json); --resume continues it on that dataset: leave out --data or give that one (a run on ${given} takes another --out)`);
  return given;
}

/**
 * Creates the run folder and records where the run's data is (run.json, for `ctvlm eval` and
 * the demo); called once the data has been checked, so a refused run leaves nothing behind.
 */
export async function recordRunData(out: string, data: string): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeAtomic(join(out, 'run.json'), JSON.stringify({ data: resolve(data) }, null, 1));
}

/**
 * The run's tokenizer: read back on resume, else trained on the training reports and every
 * prompt (their words must be in the vocabulary) and saved as tokenizer.json.
 */
export async function runTokenizer(out: string, resumed: boolean, trainSet: CtDataset, vocabSize: number): Promise<WordPieceTokenizer> {
  const tokPath = join(out, 'tokenizer.json');
  if (resumed) return WordPieceTokenizer.fromJSON(await readJsonFile(tokPath, 'tokenizer'), tokPath);
  const corpus = [...trainSet.reports(), ...allPrompts().flatMap((c) => [...c.pos, ...c.neg]), ...zeroShotTexts()];
  const tok = WordPieceTokenizer.train(corpus, { vocabSize });
  await writeAtomic(tokPath, tok.serialize());
  return tok;
}

/**
 * The configuration a new run saves as train-config.json (a resumed one keeps its own): the
 * model's vocabulary is the tokenizer's, and SigLIP's initial b set from siglipBias: a number as
 * it is, 'auto' the prior of the texts each image meets in a step (batch + negativeReports;
 * checkNegativeReports ensures the set supplies them).
 */
export async function settleConfig(out: string, cfg: TrainConfig, tok: WordPieceTokenizer, resumed: boolean): Promise<TrainConfig> {
  cfg = { ...cfg, model: { ...cfg.model, text: { ...cfg.model.text, vocabSize: tok.vocabSize } } };
  if (!resumed && cfg.siglipBias === 'auto')
    // SigLIP's prior: one positive among the texts each image meets in a step (the batch's
    // reports and any negative reports). RadFinder's b = -10 is that prior for ~32k pairs; at
    // a batch of 8 it is log(1/7) = -1.95, and b can not travel 8 units at lr ~1e-3 (the loss
    // then reaches its constant-predictor value by collapsing every embedding onto one
    // direction instead).
    cfg = { ...cfg, model: { ...cfg.model, siglipInit: { ...cfg.model.siglipInit, b: -Math.log(Math.max(1, cfg.batch + (cfg.negativeReports ?? 0) - 1)) } } };
  // A number is the initial b itself (it was ignored before: the model kept the paper's -10).
  else if (!resumed && typeof cfg.siglipBias === 'number') cfg = { ...cfg, model: { ...cfg.model, siglipInit: { ...cfg.model.siglipInit, b: cfg.siglipBias } } };
  if (!resumed) await saveTrainConfig(out, cfg);
  return cfg;
}

/**
 * The files beside model.safetensors that make every checkpoint folder a RadFinder weights
 * folder: config.json in the release's layout and tokenizer.json.
 */
export function weightsFolderFiles(cfg: TrainConfig, tok: WordPieceTokenizer): Record<string, string> {
  return { 'config.json': JSON.stringify(toRadfinderJson(cfg.model, { maxTextTokens: cfg.reportTokens }), null, 1), 'tokenizer.json': tok.serialize() };
}

/**
 * RUN/.lock: one training process per run folder. Two processes training one run (a second
 * `--resume` while the first still runs) would interleave metrics.jsonl and replace each
 * other's checkpoints. The file holds the owner's pid and host. It is made whole or not at all
 * (written under another name, then hard-linked into place, which fails when a lock exists), so
 * a reader never meets an empty one. A lock whose process is gone on this host (killed: nothing
 * removed it) is taken over: moved aside by one atomic rename, which only one of two racing
 * processes wins, and checked again after the move. A lock from another host cannot be checked
 * and is refused, naming it.
 */
export class RunLock {
  private held = false;
  constructor(private readonly dir: string) {}

  get path(): string {
    return join(this.dir, '.lock');
  }

  /**
   * Takes the lock where the folder exists (a new run's folder is made later: call again then).
   * @throws CtvlmError naming the process that holds it, or why the file cannot be made.
   */
  acquire(): void {
    if (this.held || !existsSync(this.dir)) return;
    const mine = `${this.path}.${process.pid}`;
    try {
      writeFileSync(mine, JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() }) + '\n');
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(mine, this.path);
          this.held = true;
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const owner = this.owner(this.path);
        if (owner?.alive) throw this.busy(owner);
        const aside = `${this.path}.stale-${process.pid}`;
        try {
          renameSync(this.path, aside);
        } catch {
          continue; // moved by another process first: look again
        }
        const moved = this.owner(aside);
        if (moved?.alive) {
          // A live lock made between our look and the move: put it back and give way.
          try {
            linkSync(aside, this.path);
          } catch {
            // taken again meanwhile; the next look names its owner
          }
          unlinkSync(aside);
          throw this.busy(moved);
        }
        unlinkSync(aside);
      }
      throw new CtvlmError(`${this.dir}: could not take ${this.path} (other processes keep taking it)`);
    } catch (e) {
      if (e instanceof CtvlmError) throw e;
      throw new CtvlmError(`${this.dir}: cannot make its lock ${this.path}: ${(e as Error).message}`);
    } finally {
      rmSync(mine, { force: true });
    }
  }

  /** Removes the lock if this process holds it (never throws: it runs in a finally). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      const owner = this.owner(this.path);
      if (owner?.pid === process.pid && owner.host === hostname()) unlinkSync(this.path);
    } catch {
      // a lock that cannot be removed is taken over by the next run (its process is gone)
    }
  }

  private busy(o: { pid: number; host: string; started: string }): CtvlmError {
    const remote = o.host !== hostname() ? ' (another host: whether it still runs cannot be checked from here)' : '';
    return new CtvlmError(`${this.dir} is being trained by process ${o.pid} on ${o.host}${remote} since ${o.started} (${this.path}); wait for it, or remove that file if no process uses the run`);
  }

  /** A lock file's owner; alive: its process exists on this host (another host's counts as
   * alive). Null for a file that cannot be read or parsed (it is then stale: locks are made whole). */
  private owner(path: string): { pid: number; host: string; started: string; alive: boolean } | null {
    let o: { pid?: unknown; host?: unknown; started?: unknown };
    try {
      o = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      return null;
    }
    if (typeof o?.pid !== 'number' || typeof o.host !== 'string') return null;
    return { pid: o.pid, host: o.host, started: String(o.started ?? '?'), alive: o.host !== hostname() || processRuns(o.pid) };
  }
}

/** Whether process `pid` of this host exists and has not exited: a killed process stays a
 * zombie (state Z in /proc/PID/stat, where Linux has it) until its parent reaps it, and
 * kill(pid, 0) still reaches it then. */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // The state is the field after the command name, which is in brackets and may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: kill(pid, 0) is all there is
  }
}
