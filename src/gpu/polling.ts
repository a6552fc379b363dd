// dawn.node finishes async work (mapAsync, onSubmittedWorkDone) by ticking the device from
// a setImmediate loop: while one of our awaits is pending, the JavaScript thread spins at
// 100% of a core. On a machine where the GPU is the CPU (lavapipe), that core is taken
// from the driver's worker threads: on 2 cores a 1024^3 matmul measured 24 GFLOP/s with
// the spin and 29-32 without. `quietly` swaps setImmediate for a 1 ms timer while our
// awaits are pending, so the loop polls instead of spinning; it is restored after.
// (Other code's setImmediate callbacks run up to 1 ms later meanwhile.) Browsers are
// left alone.

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
let depth = 0;
let original: typeof setImmediate | null = null;
let enabled = true;

/** Turns the throttle off (dawn's default busy polling) or back on. */
export function setQuietPolling(on: boolean): void {
  enabled = on;
}

function throttled(fn: (...args: unknown[]) => void, ...args: unknown[]): NodeJS.Immediate {
  return setTimeout(fn, 1, ...args) as unknown as NodeJS.Immediate;
}

// While the swap is on, other code (playwright, say) may get a Timeout from setImmediate and
// later hand it to clearImmediate, which would corrupt Node's timer lists: route those to
// clearTimeout. Installed once, and left installed, since such handles outlive the swap.
let clearPatched = false;
function patchClearImmediate(): void {
  if (clearPatched) return;
  clearPatched = true;
  const clear = globalThis.clearImmediate;
  const timeoutClass = setTimeout(() => {}, 0);
  clearTimeout(timeoutClass);
  const Timeout = timeoutClass.constructor;
  globalThis.clearImmediate = ((h: unknown) => {
    if (h instanceof Timeout) clearTimeout(h as NodeJS.Timeout);
    else clear(h as NodeJS.Immediate);
  }) as typeof clearImmediate;
}

/** Awaits `p` with dawn.node polling on a timer instead of spinning. */
export async function quietly<T>(p: Promise<T>): Promise<T> {
  if (!isNode || !enabled) return await p;
  if (depth++ === 0) {
    patchClearImmediate();
    original = globalThis.setImmediate;
    globalThis.setImmediate = throttled as unknown as typeof setImmediate;
  }
  try {
    return await p;
  } finally {
    if (--depth === 0 && original) {
      globalThis.setImmediate = original;
      original = null;
    }
  }
}
