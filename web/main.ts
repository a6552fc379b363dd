// The browser demo's entry. The same bundle (dist/web/main.js) runs twice: on the page, where it
// builds the viewer and the controls (web/app.ts), and as the page's module worker, where it
// runs the model (web/worker.ts), so the build has one entry and the server one script.
//
// Page parameters, for scripted use (`ctvlm web` writes them):
//   ?weights=<folder URL with config.json, tokenizer.json, model.safetensors>
//   &ct=<NIfTI URL> (repeatable)  &manifest=<manifest.jsonl URL> (slice metadata for the CTs)
//   &q=<sentence>  (localized once the CTs are embedded)
import { App } from './app.ts';
import { startWorker } from './worker.ts';

export type { DemoState } from './app.ts';
export type { LocalizeResult, SnippetResult, ZeroShotScore } from './protocol.ts';

const inWorker = typeof document === 'undefined';

if (inWorker) startWorker();
else {
  const worker = new Worker(import.meta.url, { type: 'module', name: 'ctvlm-model' });
  const app = new App(worker);
  app.start().catch((e) => {
    app.say(`the page failed to start: ${(e as Error).message}`, true);
    document.body.dataset.ready = 'true';
  });
}
