// Reverse-mode autograd over GPU tensors, in the micrograd shape: every op that has an
// input needing a gradient records a node (its inputs and one backward rule); backward()
// sorts the graph once, topologically, and runs each node's rule once, accumulating
// gradients where a tensor fed several ops (an add, or inside the rule's own kernel where it
// takes the sum so far: GradNode.backward's `accumulated`). Each rule runs inside a scope that keeps only
// what it returns, so a rule never frees its temporaries by hand; rules compute with the
// non-recording launches of src/launch.
import { ShapeError, ValueError } from './errors.ts';
import { Tensor, fmtShape, scope, untrack, type Accumulated, type GradNode } from './tensor.ts';
import { add, ones } from './launch/elementwise.ts';

export type { Accumulated, GradNode };

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording any graph (inference, optimizer steps, backward rules). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Whether record() would record an op on these inputs: an op that saves tensors for its
 * backward asks first, so that it saves nothing in inference. */
export function willRecord(inputs: readonly Tensor[]): boolean {
  return gradEnabled && inputs.some((t) => t.requiresGrad);
}

/** Records `out` as made by `op` from `inputs` when any input needs a gradient. */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: GradNode['backward']): Tensor {
  if (willRecord(inputs)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

/** A tensor with the same data and no history. */
export function detach(t: Tensor): Tensor {
  const d = t.view(t.shape, `${t.name}.detach`);
  return d;
}

/** The tensors reachable from root, inputs before outputs. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: graphs of deep models would overflow a recursive one.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next.requiresGrad && next.disposed)
        throw new ValueError(
          `backward: '${next.name}' ${fmtShape(next.shape)}, an input of ${t.node!.op}, was disposed while the graph still needed it (leave intermediates to scope())`,
        );
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

/**
 * Accumulates d(root)/d(leaf) into leaf.grad for every leaf that requires a gradient.
 * `seed` is the gradient of root itself; it may be omitted only for a one-element root.
 * Ops used to compute gradients are not recorded (no higher-order gradients).
 */
export function backward(root: Tensor, seed?: Tensor): void {
  if (root.disposed) throw new ValueError(`backward: '${root.name}' ${fmtShape(root.shape)} was disposed`);
  if (seed?.disposed) throw new ValueError(`backward: the seed gradient '${seed.name}' was disposed`);
  if (!root.requiresGrad) throw new ValueError(`backward: '${root.name}' ${fmtShape(root.shape)} does not depend on any tensor that requires a gradient`);
  if (!seed && root.size !== 1)
    throw new ShapeError(`backward: '${root.name}' has shape ${fmtShape(root.shape)}; a non-scalar needs a seed gradient of the same shape`);
  if (seed && seed.shape.join() !== root.shape.join())
    throw new ShapeError(`backward: seed gradient ${fmtShape(seed.shape)} does not match '${root.name}' ${fmtShape(root.shape)}`);
  noGrad(() => {
    const order = topoOrder(root);
    const grads = new Map<Tensor, Tensor>();
    const userSeed = seed;
    grads.set(root, seed ?? ones(root.gpu, root.shape));
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        accumulateLeaf(t, g, g === userSeed);
        continue;
      }
      const node = t.node;
      // A rule may take an input's gradient so far and add into it in its own kernel: one
      // dispatch and one pass over memory fewer than the add below (first occurrence of an
      // input only, so that an op fed the same tensor twice still sums both). Like the other
      // fused epilogues, gpu.tuning.fuseEpilogues = false turns it off (the separate adds).
      const taken: (Tensor | undefined)[] = [];
      const accumulated: Accumulated = (j) => {
        const x = node.inputs[j];
        const prev = x && x.gpu.tuning.fuseEpilogues && node.inputs.indexOf(x) === j ? grads.get(x) : undefined;
        if (!prev) return null;
        grads.delete(x);
        taken[j] = prev;
        return prev;
      };
      const inputGrads = scope(() => node.backward(g, accumulated));
      for (let j = 0; j < t.node.inputs.length; j++) {
        const x = t.node.inputs[j];
        const gx = inputGrads[j];
        const sofar = taken[j];
        if (sofar) {
          if (!gx || gx.shape.join() !== x.shape.join())
            throw new ShapeError(`backward of ${node.op}: the rule took input ${j}'s accumulated gradient and returned ${gx ? fmtShape(gx.shape) : 'none'} for ${fmtShape(x.shape)} (a bug in the op's rule)`);
          grads.set(x, gx === g ? g.view(g.shape) : gx);
          if (gx !== sofar) sofar.dispose();
          continue;
        }
        if (!gx || !x.requiresGrad) {
          if (gx && gx !== g) gx.dispose();
          continue;
        }
        if (gx.shape.join() !== x.shape.join())
          throw new ShapeError(`backward of ${t.node.op}: gradient ${fmtShape(gx.shape)} for input ${j} does not match its shape ${fmtShape(x.shape)} (a bug in the op's rule)`);
        const prev = grads.get(x);
        // g itself (a rule passing it through) is freed below, never here: it may be the
        // caller's seed.
        if (prev) grads.set(x, addInto(prev, gx, gx !== g));
        else grads.set(x, gx === g ? g.view(g.shape) : gx);
      }
      if (g !== userSeed) g.dispose();
    }
  });
}

function addInto(a: Tensor, b: Tensor, freeB: boolean): Tensor {
  const s = add(a, b);
  a.dispose();
  if (freeB) b.dispose();
  return s;
}

// A leaf's gradient lives as long as the leaf (Tensor.dispose frees it) or until it is
// replaced or cleared; no scope() disposes it behind the leaf's back.
function accumulateLeaf(leaf: Tensor, g: Tensor, isUserSeed: boolean): void {
  const own = untrack(isUserSeed ? g.view(g.shape) : g);
  if (leaf.grad) {
    const sum = untrack(add(leaf.grad, own));
    leaf.grad.dispose();
    own.dispose();
    leaf.grad = sum;
  } else leaf.grad = own;
}
