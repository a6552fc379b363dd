// `ctvlm web`: serves the browser demo (dist/web) with a trained run and, optionally, a CT,
// on localhost. Only the demo's files, the run's model files and the given CT are served.
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { numberOption, parseCliArgs, type Command } from './command.ts';
import { DataError } from '../errors.ts';
import { UsageError } from '../app-errors.ts';
import { resolveWeightsFolder } from '../model/folder.ts';

export interface DemoServerOptions {
  run?: string;
  ct?: string;
  port?: number;
  host?: string;
  /** The built page (dist/web). */
  webDir?: string;
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json', '.json': 'application/json' };

function defaultWebDir(): string {
  // dist/cli.js -> dist/web
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const c of [join(here, 'web'), join(here, '..', 'dist', 'web'), join(here, '..', '..', 'dist', 'web')]) if (existsSync(join(c, 'index.html'))) return c;
  throw new DataError('dist/web', 'index.html', 'the demo page is not built: run `npm run build`');
}

/** Starts the server; resolves once it listens. */
export async function startDemoServer(o: DemoServerOptions): Promise<{ server: Server; url: string }> {
  const web = o.webDir ?? defaultWebDir();
  // The weights folder: W itself (RadFinder's layout) or a run's latest checkpoint.
  const run = o.run ? (await resolveWeightsFolder(resolve(o.run))).dir : null;
  if (o.ct && !existsSync(o.ct)) throw new DataError(o.ct, 'file', 'not found');
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
    else if (/^\/main\.js(\.map)?$/.test(path)) file = join(web, path.slice(1));
    else if (run && /^\/weights\/(config\.json|tokenizer\.json|model\.safetensors)$/.test(path)) file = join(run, path.slice('/weights/'.length));
    else if (o.ct && path === `/ct/${basename(o.ct)}`) file = o.ct;
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(readFileSync(file));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e) => fail(new DataError(`${o.host ?? '127.0.0.1'}:${o.port ?? 0}`, 'listen', (e as Error).message)));
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const params = [run ? 'weights=/weights/' : '', o.ct ? `ct=/ct/${encodeURIComponent(basename(o.ct))}` : ''].filter(Boolean).join('&');
  return { server, url: `http://${o.host ?? '127.0.0.1'}:${port}/${params ? `?${params}` : ''}` };
}

const usage = `usage: ctvlm web [--run W] [--ct FILE] [--port N] [--host ADDR]

Serves the browser demo on localhost: open the printed address in a browser with WebGPU
(Chrome or Edge 113+), then type a report sentence to see which depth of the CT it refers
to. With --run and --ct the page loads them itself; without, it offers file pickers.

options:
  --run W       a run folder written by \`ctvlm train\` (its latest checkpoint), or a RadFinder
                weights folder (config.json, tokenizer.json, model.safetensors)
  --ct FILE     a NIfTI volume (.nii or .nii.gz)
  --port N      port (default 8080; 0 picks a free one)
  --host ADDR   address to listen on (default 127.0.0.1)`;

export const command: Command = {
  name: 'web',
  summary: 'serve the browser demo (localize a report sentence in a CT) on localhost',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({ args: argv, options: { run: { type: 'string' }, weights: { type: 'string' }, ct: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } } });
    const port = numberOption(a.port, 'port', true) ?? 8080;
    if (port > 65535) throw new UsageError(`--port: ${port} is not a port number`);
    const { url } = await startDemoServer({ run: a.run ?? a.weights, ct: a.ct, port, host: a.host });
    console.log(`demo: ${url}\n(Ctrl-C stops the server)`);
    await new Promise(() => {});
  },
};
