// Float64 special functions the elementwise table's references need (JavaScript has no erf).

/**
 * erfc to double precision: 1 - erf by the positive-term series erf(x) = 2/sqrt(pi) e^{-x^2}
 * sum 2^n x^{2n+1} / (2n+1)!! below 2 (no cancellation in the sum; erfc >= 0.0047 there),
 * and the continued fraction erfc(x) = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
 * from 2 (relative error ~1e-15 in the tail, where 1 - erf would cancel).
 */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 0; n < 200 && term > sum * 1e-18; n++) {
      term *= (2 * x2) / (2 * n + 3);
      sum += term;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  }
  // Backward evaluation of the fraction, with enough terms for x >= 2.
  let f = x;
  for (let n = 120; n >= 1; n--) f = n === 120 ? x : x + n / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** Standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2). */
export const normalCdf = (x: number): number => 0.5 * erfc(-x / Math.SQRT2);
/** Standard normal density. */
export const normalPdf = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
/** sigmoid(x) from exp(-|x|) (no overflow). */
export function sigmoid64(x: number): number {
  const z = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + z) : z / (1 + z);
}
