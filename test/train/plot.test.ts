import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lineChartSvg } from '../../src/train/plot.ts';

test('line chart: well-formed SVG with one polyline per series; log axis skips non-positive values', () => {
  const svg = lineChartSvg([{ name: 'loss <train>', points: [[1, 2], [2, 1], [3, 0.5]] }, { name: 'val', points: [[1, 3], [3, NaN]] }], { title: 'loss', logY: true, xLabel: 'step' });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.is((svg.match(/<polyline/g) ?? []).length, 2);
  assert.match(svg, /loss &lt;train&gt;/, 'names are escaped');
  assert.ok(!svg.includes('NaN'));
  assert.match(lineChartSvg([], { title: 'empty' }), /no data yet/);
});

test.run();
