// A small grid sweep in a store, as a Kubernetes Indexed Job would leave it:
// `mnistd train SPEC --grid-index N` for some points of a 2 x 2 grid
// (rates x activations) of a tiny MLP, each publishing a version of `name`.
// Returns the versions' outputs (`{"model","version",...}` per point).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export function makeGrid(bin, store, dataDir, name, points) {
  const spec = {
    name, dataset: 'mnist', epochs: 1, batch_size: 512, seed: 3,
    layers: [{ type: 'flatten' }, { type: 'dense', units: 8, activation: 'relu' },
             { type: 'dense', units: 10, activation: 'softmax' }],
    grid: { learning_rate: [0.002, 0.02], activation: ['relu', 'tanh'] },
  };
  const file = path.join(store, `.${name}-grid.json`);
  fs.writeFileSync(file, JSON.stringify(spec));
  const out = points.map((i) => JSON.parse(execFileSync(bin,
    ['train', file, '--grid-index', String(i), '--threads', '1', '--models', store, '--data', dataDir],
    { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n').pop()));
  fs.rmSync(file);
  return out;
}
