// `ctvlm web`: serves the browser demo (dist/web) with a trained run and, optionally, CTs and a
// manifest, on localhost. Only the demo's files, the run's model files and the given CTs and
// manifest are served; model.safetensors in byte ranges (the page reads it tensor by tensor).
// The page's Content-Security-Policy lets it reach this server only: nothing leaves the machine.
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { numberOption, parseCliArgs, type Command } from './command.ts';
import { DataError } from '../errors.ts';
import { UsageError } from '../app-errors.ts';
import { resolveWeightsFolder } from '../model/folder.ts';

export interface DemoServerOptions {
  run?: string;
  /** NIfTI files the page loads on start (one name each: two files of one name are refused). */
  ct?: string | string[];
  /** A manifest.jsonl with the CTs' slice metadata (for a report's "series 3, image 45"). */
  manifest?: string;
  port?: number;
  host?: string;
  /** The built page (dist/web). */
  webDir?: string;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json', '.json': 'application/json' };

// The page and its worker load scripts, fetch and connect only here; blob: for canvases.
const CSP = "default-src 'self'; script-src 'self'; worker-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'";

function defaultWebDir(): string {
  // dist/cli.js -> dist/web
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const c of [join(here, 'web'), join(here, '..', 'dist', 'web'), join(here, '..', '..', 'dist', 'web')]) if (existsSync(join(c, 'index.html'))) return c;
  throw new DataError('dist/web', 'index.html', 'the demo page is not built: run `npm run build`');
}

/** "bytes=a-b" of a file of `size` bytes -> [start, end] (inclusive), or null when unsatisfiable. */
export function parseRange(header: string, size: number): [number, number] | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number, end: number;
  if (m[1] === '') {
    // "bytes=-n": the last n bytes.
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start <= end && start < size ? [start, end] : null;
}

/** Starts the server; resolves once it listens. */
export async function startDemoServer(o: DemoServerOptions): Promise<{ server: Server; url: string }> {
  const web = o.webDir ?? defaultWebDir();
  // The weights folder: W itself (RadFinder's layout) or a run's latest checkpoint.
  const run = o.run ? (await resolveWeightsFolder(resolve(o.run))).dir : null;
  const cts = new Map<string, string>();
  for (const ct of o.ct === undefined ? [] : Array.isArray(o.ct) ? o.ct : [o.ct]) {
    if (!existsSync(ct) || !statSync(ct).isFile()) throw new DataError(ct, 'file', 'not found (--ct takes a .nii or .nii.gz file)');
    if (cts.has(basename(ct))) throw new DataError(ct, 'file', `two CTs named ${basename(ct)}: the page tells CTs apart by name`);
    cts.set(basename(ct), ct);
  }
  if (o.manifest && !existsSync(o.manifest)) throw new DataError(o.manifest, 'file', 'not found');
  const server = createServer((req, res) => {
    let path: string;
    try {
      path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request');
      return;
    }
    let file: string | null = null;
    if (path === '/' || path === '/index.html') file = join(web, 'index.html');
    else if (path === '/playground.html') file = join(web, 'playground.html');
    else if (/^\/(main|playground)\.js(\.map)?$/.test(path)) file = join(web, path.slice(1));
    else if (run && /^\/weights\/(config\.json|tokenizer\.json|model\.safetensors)$/.test(path)) file = join(run, path.slice('/weights/'.length));
    else if (path.startsWith('/ct/')) file = cts.get(path.slice('/ct/'.length)) ?? null;
    else if (o.manifest && path === `/manifest/${basename(o.manifest)}`) file = o.manifest;
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const size = statSync(file).size;
    const headers = { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', 'cache-control': 'no-store', 'accept-ranges': 'bytes', 'content-security-policy': CSP };
    const range = req.headers.range ? parseRange(req.headers.range, size) : undefined;
    if (range === null) {
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    const [start, end] = range ?? [0, size - 1];
    res.writeHead(range ? 206 : 200, { ...headers, 'content-length': String(end - start + 1), ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) });
    if (req.method === 'HEAD' || size === 0) res.end();
    else createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e) => fail(new DataError(`${o.host ?? '127.0.0.1'}:${o.port ?? 0}`, 'listen', (e as Error).message)));
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const params = [
    run ? 'weights=/weights/' : '',
    // What the page calls the model: the folder as a picker would name it (run/checkpoint).
    run ? `weightsName=${encodeURIComponent(run.split(sep).slice(-2).join('/'))}` : '',
    o.manifest ? `manifest=/manifest/${encodeURIComponent(basename(o.manifest))}` : '',
    ...[...cts.keys()].map((name) => `ct=/ct/${encodeURIComponent(name)}`),
  ].filter(Boolean).join('&');
  return { server, url: `http://${o.host ?? '127.0.0.1'}:${port}/${params ? `?${params}` : ''}` };
}

const usage = `usage: ctvlm web [--run W] [--ct FILE]... [--manifest FILE] [--port N] [--host ADDR]

Serves the browser demo on localhost: open the printed address in a browser with WebGPU
(Chrome or Edge 113+). The page is a CT viewer (axial, coronal, sagittal; window/level) with
the model's three tasks: where a sentence points in the scan, zero-shot scores of 18
findings, and ranking the loaded CTs for a report; a report's image references ("series 3,
image 45") are found and each sentence localized. With --run and --ct the page loads them
itself; without, it offers file pickers and takes dropped files and folders.
/playground.html runs the bench's kernel sections on the browser's adapter.

options:
  --run W          a run folder written by \`ctvlm train\` (its latest checkpoint), or a RadFinder
                   weights folder (config.json, tokenizer.json, model.safetensors)
  --ct FILE        a NIfTI volume (.nii or .nii.gz); repeat for several (retrieval)
  --manifest FILE  a manifest.jsonl whose entries give the CTs' slice metadata
  --port N         port (default 8080; 0 picks a free one)
  --host ADDR      address to listen on (default 127.0.0.1)`;

export const command: Command = {
  name: 'web',
  summary: 'serve the browser demo (a CT viewer with the model\'s three tasks) on localhost',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({ args: argv, options: { run: { type: 'string' }, weights: { type: 'string' }, ct: { type: 'string', multiple: true }, manifest: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } } });
    const port = numberOption(a.port, 'port', true) ?? 8080;
    if (port > 65535) throw new UsageError(`--port: ${port} is not a port number`);
    const { url } = await startDemoServer({ run: a.run ?? a.weights, ct: a.ct, manifest: a.manifest, port, host: a.host });
    console.log(`demo: ${url}\n(Ctrl-C stops the server)`);
    await new Promise(() => {});
  },
};
