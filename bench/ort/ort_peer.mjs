// ONNX Runtime (onnxruntime-node, CPU) as make bench's inference peer, timed
// as bench_core.c times mnistd, on the same Fashion-MNIST test images:
// batch-1 latency over 1,000 calls on one intra-op thread (each call a new
// image, its tensor made inside the timed call, as mnistd prepares its
// input inside), and the best of 3 runs classifying the 10,000 images as
// one batch on two intra-op threads. identity.onnx timed the same way is
// the node binding's own cost per call, measured after each network's
// batch-1 calls and once more at the end. One JSON line per model.
//   node bench/ort/ort_peer.mjs ONNX_DIR DATA_DIR NET...
import ort from 'onnxruntime-node';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const LATENCY_CALLS = 1000, WARMUP_CALLS = 200, THROUGHPUT_THREADS = 2, RUNS = 3;
const [dir, dataDir, ...nets] = process.argv.slice(2);

// The test split's images scaled to [0, 1], as mnistd's /255 preprocessing.
function testImages() {
  const file = path.join(dataDir, 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
  const b = zlib.gunzipSync(fs.readFileSync(file));
  if (b.readUInt32BE(0) !== 0x803) throw new Error(`${file}: not an IDX file of uint8 images`);
  const [n, h, w] = [b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12)];
  if (b.length !== 16 + n * h * w) throw new Error(`${file}: ${b.length} bytes, header says ${n}x${h}x${w}`);
  const x = new Float32Array(n * h * w);
  for (let i = 0; i < x.length; i++) x[i] = b[16 + i] / 255;
  return { x, n, numel: h * w };
}

const quantile = (v, q) => v.slice().sort((a, b) => a - b)[Math.round(q * (v.length - 1))];
const since = t => Number(process.hrtime.bigint() - t);

async function session(file, threads) {
  return ort.InferenceSession.create(file, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
  });
}

async function batch1(file, shape, img) {
  const s = await session(file, 1);
  const one = i => new ort.Tensor('float32', img.x.subarray(i * img.numel, (i + 1) * img.numel), shape);
  for (let i = 0; i < WARMUP_CALLS; i++) await s.run({ input: one(i % img.n) });
  const us = [];
  for (let i = 0; i < LATENCY_CALLS; i++) {
    const t = process.hrtime.bigint();
    await s.run({ input: one(i % img.n) });
    us.push(since(t) / 1e3);
  }
  await s.release();
  return { b1_median_us: +quantile(us, 0.5).toFixed(2), b1_p99_us: +quantile(us, 0.99).toFixed(2) };
}

async function throughput(file, shape, img) {
  const s = await session(file, THROUGHPUT_THREADS);
  const all = new ort.Tensor('float32', img.x, [img.n, ...shape.slice(1)]);
  await s.run({ input: all });
  let best = Infinity;
  for (let r = 0; r < RUNS; r++) {
    const t = process.hrtime.bigint();
    await s.run({ input: all });
    best = Math.min(best, since(t) / 1e9);
  }
  await s.release();
  return Math.round(img.n / best);
}

const img = testImages();
const common = { tool: 'onnxruntime-node', ort: ort.env.versions.common, test_samples: img.n };
for (const net of nets) {
  const file = path.join(dir, net + '.onnx');
  const shape = net.startsWith('cnn') ? [1, 1, 28, 28] : [1, img.numel];
  const b1 = await batch1(file, shape, img);
  // the binding's cost again, straight after: the machine may be shared
  const binding = await batch1(path.join(dir, 'identity.onnx'), [1, img.numel], img);
  console.log(JSON.stringify({
    ...common, net, b1_threads: 1, ...b1, identity_b1_median_us: binding.b1_median_us,
    throughput_threads: THROUGHPUT_THREADS, samples_per_s: await throughput(file, shape, img),
  }));
}
// last, with node's JIT as warm as it was for the networks
console.log(JSON.stringify({ ...common, net: 'identity', ...await batch1(path.join(dir, 'identity.onnx'), [1, img.numel], img) }));
