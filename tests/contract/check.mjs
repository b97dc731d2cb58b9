// Contract test: validates openapi.yaml (OpenAPI 3.0 schema and $refs), then
// starts the real server and checks that every response's status and body
// match what the contract declares for that route.
//   node check.mjs MNISTD_BIN OPENAPI_YAML MODELS_DIR DATA_DIR
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv from 'ajv';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeGrid } from '../lib/grid.mjs';
import { startServer } from '../lib/serve.mjs';

const [bin, specPath, modelsDir, dataDir] = process.argv.slice(2);
let passed = 0, failed = 0;
const fail = (what, why) => { failed++; console.log(`FAIL ${what}: ${why}`); };
const pass = () => { passed++; };

await SwaggerParser.validate(specPath).then(pass, (e) => fail('openapi.yaml', e.message));
const api = await SwaggerParser.dereference(specPath);
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });

// A private copy of the store: the run trains a model and writes a journal.
const store = fs.mkdtempSync(path.join(os.tmpdir(), 'mnistd-contract-'));
fs.cpSync(modelsDir, store, { recursive: true });
makeGrid(bin, store, dataDir, 'contract-grid', [0, 3]);
const staticDir = new URL('../../static', import.meta.url).pathname;
const specsDir = new URL('../../specs', import.meta.url).pathname;
const { base, stop } = await startServer(bin, ['--models', store, '--data', dataDir,
                                                '--static', staticDir, '--specs', specsDir]);

// The contract's schema for (template, method, status, content type).
function schemaFor(template, method, status, type) {
  const op = api.paths[template]?.[method.toLowerCase()];
  if (!op) return { error: `no operation ${method} ${template}` };
  const resp = op.responses[String(status)];
  if (!resp) return { error: `status ${status} is not declared for ${method} ${template}` };
  const media = resp.content?.[type];
  if (!media) return { error: `${type} is not declared for ${status} on ${method} ${template}` };
  return { schema: media.schema };
}

async function check(method, url, template, { body, type, want } = {}) {
  const res = await fetch(base + url, { method, body, headers: type ? { 'Content-Type': type } : {} });
  const ctype = (res.headers.get('content-type') || '').split(';')[0];
  const text = await res.text();
  const what = `${method} ${url} -> ${res.status}`;
  if (want && res.status !== want) return fail(what, `expected ${want}: ${text.slice(0, 200)}`);
  const found = schemaFor(template, method, res.status, ctype);
  if (found.error) return fail(what, found.error);
  if (ctype === 'application/json') {
    const validate = ajv.compile(found.schema);
    const data = JSON.parse(text);
    if (!validate(data)) return fail(what, ajv.errorsText(validate.errors));
    pass();
    return data;
  }
  pass();
  return text;
}

// Waits up to a minute for a job to end; it must succeed.
async function finished(job, what) {
  let status = 'queued';
  for (let i = 0; i < 600 && !['succeeded', 'failed'].includes(status); i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await (await fetch(`${base}/jobs/${job.id}`)).json()).status;
  }
  if (status !== 'succeeded') fail(what, status); else pass();
}

const pixels = Array.from({ length: 784 }, (_, i) => ((i * 37) % 255) / 255);
const json = 'application/json';
try {
  await check('GET', '/v2', '/v2', { want: 200 });
  await check('GET', '/v2/health/live', '/v2/health/live', { want: 200 });
  await check('GET', '/v2/health/ready', '/v2/health/ready', { want: 200 });
  await check('GET', '/v2/models/mnist-cnn', '/v2/models/{name}', { want: 200 });
  await check('GET', '/v2/models/mnist-cnn/versions/1', '/v2/models/{name}/versions/{version}', { want: 200 });
  await check('GET', '/v2/models/mnist-cnn/ready', '/v2/models/{name}/ready', { want: 200 });
  await check('GET', '/v2/models/nosuch', '/v2/models/{name}', { want: 404 });
  const infer = { id: 'c1', inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: pixels }] };
  await check('POST', '/v2/models/mnist-cnn/infer', '/v2/models/{name}/infer', { body: JSON.stringify(infer), type: json, want: 200 });
  infer.outputs = [{ name: 'probabilities', parameters: { classification: 2 } }];
  await check('POST', '/v2/models/mnist-cnn/versions/1/infer', '/v2/models/{name}/versions/{version}/infer', { body: JSON.stringify(infer), type: json, want: 200 });
  await check('POST', '/v2/models/mnist-cnn/infer', '/v2/models/{name}/infer', { body: '{"inputs": []}', type: json, want: 400 });
  const kserve = { id: 'k1', model_name: 'mnist-cnn', model_version: '1', parameters: { binary_data_output: false }, inputs: infer.inputs, outputs: [{ name: 'probabilities' }] };
  await check('POST', '/v2/models/mnist-cnn/infer', '/v2/models/{name}/infer', { body: JSON.stringify(kserve), type: json, want: 200 });
  await check('POST', '/v2/models/mnist-cnn/infer', '/v2/models/{name}/infer', { body: JSON.stringify({ ...kserve, model: 'x' }), type: json, want: 400 });
  await check('POST', '/predict', '/predict', { body: JSON.stringify({ pixels }), type: json, want: 200 });
  await check('POST', '/predict?trace=1', '/predict', { body: JSON.stringify({ pixels }), type: json, want: 200 });
  await check('POST', '/predict?model=fashion-cnn', '/predict', { body: JSON.stringify({ pixels: [pixels, pixels] }), type: json, want: 200 });
  await check('POST', '/predict', '/predict', { body: '{"pixels": [2]}', type: json, want: 400 });
  await check('POST', '/predict', '/predict', { body: 'x', type: 'text/plain', want: 415 });
  await check('POST', '/predict?model=nosuch', '/predict', { body: JSON.stringify({ pixels }), type: json, want: 404 });
  await check('POST', '/v1/models/mnist-cnn:predict', '/v1/models/{model}', { body: JSON.stringify({ instances: [pixels] }), type: json, want: 200 });
  await check('POST', '/v1/models/mnist-cnn/versions/1:predict', '/v1/models/{name}/versions/{version}', { body: JSON.stringify({ inputs: { input: [pixels] } }), type: json, want: 200 });
  await check('POST', '/v1/models/mnist-cnn:predict', '/v1/models/{model}', { body: '{"instances": []}', type: json, want: 400 });
  await check('GET', '/v1/models/mnist-cnn', '/v1/models/{model}', { want: 200 });
  await check('GET', '/v1/models/nosuch', '/v1/models/{model}', { want: 404 });
  await check('GET', '/v1/models/mnist-cnn/versions/1', '/v1/models/{name}/versions/{version}', { want: 200 });
  await check('GET', '/v1/models/mnist-cnn/metadata', '/v1/models/{name}/metadata', { want: 200 });
  await check('GET', '/v1/models/mnist-cnn/versions/1/metadata', '/v1/models/{name}/versions/{version}/metadata', { want: 200 });
  // Triton's extensions
  await check('GET', '/v2/models/mnist-cnn/config', '/v2/models/{name}/config', { want: 200 });
  await check('GET', '/v2/models/mnist-cnn/versions/1/config', '/v2/models/{name}/versions/{version}/config', { want: 200 });
  await check('GET', '/v2/models/nosuch/config', '/v2/models/{name}/config', { want: 404 });
  await check('GET', '/v2/models/stats', '/v2/models/stats', { want: 200 });
  await check('GET', '/v2/models/mnist-cnn/stats', '/v2/models/{name}/stats', { want: 200 });
  await check('GET', '/v2/models/mnist-cnn/versions/1/stats', '/v2/models/{name}/versions/{version}/stats', { want: 200 });
  await check('POST', '/v2/repository/index', '/v2/repository/index', { want: 200 });
  await check('POST', '/v2/repository/index', '/v2/repository/index', { body: '{"x": 1}', type: json, want: 400 });
  // TorchServe's PUT of a raw body (JSON pixels: no Content-Type, told from the bytes)
  await check('PUT', '/predictions/mnist-cnn/1', '/predictions/{name}/{version}', { body: Buffer.from(JSON.stringify({ pixels })), want: 200 });
  await check('PUT', '/predictions/mnist-cnn', '/predictions/{name}', { body: Buffer.from('GIF89a'), want: 415 });
  await check('POST', '/explain?steps=8', '/explain', { body: JSON.stringify({ pixels }), type: json, want: 200 });
  // WebP files (fuzz_webp's seeds): a photo-like one with its preprocessing steps, an animation refused
  const webp = (name) => fs.readFileSync(new URL(`../fuzz/corpus/webp/${name}`, import.meta.url));
  await check('POST', '/predict?trace=1', '/predict', { body: webp('lossy.webp'), type: 'image/webp', want: 200 });
  await check('POST', '/explain?steps=8&trace=1', '/explain', { body: webp('lossy.webp'), type: 'image/webp', want: 200 });
  await check('POST', '/predict', '/predict', { body: webp('animated.webp'), type: 'image/webp', want: 415 });
  await check('POST', '/explain?model=fashion-cnn&steps=4&class=2', '/explain', { body: JSON.stringify({ pixels: [pixels, pixels] }), type: json, want: 200 });
  await check('POST', '/explain?class=10', '/explain', { body: JSON.stringify({ pixels }), type: json, want: 400 });
  await check('POST', '/explain?steps=5000', '/explain', { body: JSON.stringify({ pixels }), type: json, want: 413 });
  await check('POST', '/explanations/mnist-cnn?steps=8', '/explanations/{name}', { body: JSON.stringify({ pixels }), type: json, want: 200 });
  await check('POST', '/explanations/mnist-cnn?steps=8', '/explanations/{name}', { body: JSON.stringify({ pixels: [pixels, pixels] }), type: json, want: 200 });
  await check('POST', '/v1/models/mnist-cnn:explain?steps=8', '/v1/models/{model}', { body: JSON.stringify({ instances: [pixels] }), type: json, want: 200 });
  await check('GET', '/ping', '/ping', { want: 200 });
  const specs = await check('GET', '/specs', '/specs', { want: 200 });
  const presets = specs ? specs.specs.map((x) => x.name) : [];
  if (presets.length !== 11 || !presets.includes('digits') || !presets.includes('fashion'))
    fail('/specs', `expected the 9 seed specs and the shipped digits and fashion, got ${presets.join(', ')}`);
  else pass();
  await check('GET', '/models', '/models', { want: 200 });
  await check('GET', '/models/mnist-cnn', '/models/{name}', { want: 200 });
  await check('GET', '/models/fashion-cnn/versions/1', '/models/{name}/versions/{version}', { want: 200 });
  await check('GET', '/models/nosuch', '/models/{name}', { want: 404 });
  await check('GET', '/models/contract-grid/grid', '/models/{name}/grid', { want: 200 });
  await check('GET', '/models/mnist-cnn/grid', '/models/{name}/grid', { want: 404 });
  await check('GET', '/datasets', '/datasets', { want: 200 });
  await check('GET', '/datasets/mnist/samples/0?format=json', '/datasets/{name}/samples/{index}', { want: 200 });
  await check('GET', '/datasets/fashion-mnist/samples/1', '/datasets/{name}/samples/{index}', { want: 200 });
  const bp = fs.readFileSync(new URL('../../specs/backprop-problem2.json', import.meta.url));
  await check('POST', '/backprop', '/backprop', { body: bp, type: json, want: 200 });
  await check('POST', '/backprop', '/backprop', { body: '{"input": 1}', type: json, want: 400 });
  // A schedule under the grid's learning-rate axis (it replaces initial_learning_rate).
  const spec = { name: 'contract', dataset: 'mnist', epochs: 1, batch_size: 256, validation_split: 0.1,
                 grid: { learning_rate: [0.001, 0.01], activation: ['relu', 'sigmoid'] },
                 optimizer: { type: 'adamw', clipnorm: 1, learning_rate: { class_name: 'CosineDecay',
                   config: { initial_learning_rate: 0.01, decay_steps: 200, warmup_steps: 0, warmup_target: null } } },
                 loss: { type: 'categorical_crossentropy', label_smoothing: 0.1 },
                 layers: [{ type: 'flatten' }, { type: 'dense', units: 8, activation: 'relu' },
                          { type: 'batch_normalization', momentum: 0.9 },
                          { type: 'dense', units: 10, activation: 'softmax' }] };
  // Augmentation first: the job's spec, written back with its defaults, meets the contract.
  spec.layers.unshift({ type: 'random_translation', height_factor: 0.1, width_factor: [-0.1, 0.1] });
  const job = await check('POST', '/train', '/train', { body: JSON.stringify(spec), type: json, want: 202 });
  // The layers and keys past the seed's: the job's spec echoes them, checked against the contract.
  const graph = { name: 'contract-graph', dataset: 'mnist', epochs: 1, batch_size: 256,
                  layers: [{ type: 'conv2d', name: 'c', filters: 4, kernel_size: 3, strides: 2, padding: 'same',
                             activation: 'gelu', use_bias: false },
                           { type: 'average_pooling2d', name: 'p', inputs: ['input'], padding: 'same' },
                           { type: 'concatenate', inputs: ['c', 'p'], axis: -1 },
                           { type: 'activation', activation: 'silu' },
                           { type: 'global_average_pooling2d' },
                           { type: 'dense', units: 10, activation: 'softmax', use_bias: false }] };
  const graphJob = await check('POST', '/train', '/train', { body: JSON.stringify(graph), type: json, want: 202 });
  await check('POST', '/train', '/train', { body: '{"name": "x", "layers": [{"type": "conv2d", "filters": 2, "kernel_size": 3}, {"type": "dense", "units": 10}]}', type: json, want: 422 });
  await check('POST', '/train', '/train', { body: '{"name": "x", "layers": [{"type": "flatten"}, {"type": "batch_normalization", "momentum": 2}, {"type": "dense", "units": 10}]}', type: json, want: 400 });
  await finished(job, 'training job');
  await finished(graphJob, 'graph training job');
  const done = await check('GET', `/jobs/${job.id}`, '/jobs/{id}', { want: 200 });
  const rates = (done?.history || []).map((e) => e.learning_rate);
  if (rates.length !== 4 || !rates.every((r) => typeof r === 'number')) fail('history learning_rate', JSON.stringify(rates));
  else pass();
  await check('POST', '/train', '/train', { body: JSON.stringify({ ...spec, grid: undefined,
    reduce_lr_on_plateau: { monitor: 'val_loss' } }), type: json, want: 400 });
  await check('GET', `/jobs/${graphJob.id}`, '/jobs/{id}', { want: 200 });
  await check('GET', '/models/contract-graph/versions/1', '/models/{name}/versions/{version}', { want: 200 });
  await check('GET', '/jobs', '/jobs', { want: 200 });
  await check('DELETE', `/jobs/${job.id}`, '/jobs/{id}', { want: 409 });
  await check('GET', '/jobs/999', '/jobs/{id}', { want: 404 });
  await check('GET', '/models/contract/versions/1', '/models/{name}/versions/{version}', { want: 200 });
  await check('DELETE', '/models/contract/versions/1', '/models/{name}/versions/{version}', { want: 200 });
  // ONNX out and in: a version's export uploaded as another model's next version
  await check('GET', '/models/mnist-cnn/versions/1/model.onnx', '/models/{name}/versions/{version}/model.onnx', { want: 200 });
  await check('GET', '/models/mnist-cnn/versions/9/model.onnx', '/models/{name}/versions/{version}/model.onnx', { want: 404 });
  const onnx = Buffer.from(await (await fetch(`${base}/models/mnist-cnn/versions/1/model.onnx`)).arrayBuffer());
  await check('POST', '/models/contract-onnx/versions', '/models/{name}/versions', { body: onnx, type: 'application/octet-stream', want: 201 });
  await check('GET', '/models/contract-onnx/versions/1', '/models/{name}/versions/{version}', { want: 200 });
  await check('POST', '/models/contract-onnx/versions', '/models/{name}/versions', { body: 'not onnx', type: 'application/octet-stream', want: 400 });
  await check('POST', '/models/contract-onnx/versions', '/models/{name}/versions', { body: 'x', type: 'text/plain', want: 415 });
  await check('GET', '/metrics', '/metrics', { want: 200 });
  await check('GET', '/openapi.yaml', '/openapi.yaml', { want: 200 });
  await check('GET', '/', '/', { want: 200 });
  await check('GET', '/static/index.html', '/static/{file}', { want: 200 });
  await check('GET', '/static/nothere.css', '/static/{file}', { want: 404 });
} catch (e) {
  fail('contract run', e.stack);
} finally {
  await stop();
  fs.rmSync(store, { recursive: true, force: true });
}
console.log(`contract: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
