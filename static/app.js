// mnistd's page: drawing pad or photo, probability bars, explanations, gallery,
// training, model view, grid sweep.
// Plain JavaScript against the HTTP API (openapi.yaml); no framework, no build.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const state = { models: [], model: null, detail: null, datasets: [], specs: [], jobs: [], streams: {}, live: null };

// ---------- talking to the server ----------

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}

function clearError() { $('error').hidden = true; }

async function api(path, options = {}) {
  const res = await fetch(path, options);
  const type = res.headers.get('content-type') || '';
  const body = type.startsWith('application/json') ? await res.json() : await res.text();
  if (!res.ok) {
    const message = body && body.error ? (body.error.message || body.error) : `${res.status} ${res.statusText}`;
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return body;
}

const postJSON = (path, data, headers = {}) =>
  api(path, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(data) });

function modelQuery() {
  return `model=${encodeURIComponent(state.model.name)}&version=${state.model.version}`;
}

// ---------- the drawing pad ----------

const pad = { strokes: [], drawing: false, timer: null };

function padContext() { return $('pad').getContext('2d'); }

function redrawPad() {
  const canvas = $('pad');
  const ctx = padContext();
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.strokeStyle = '#000';
  ctx.lineWidth = canvas.width / 14; // about two MNIST pixels once fitted
  for (const stroke of pad.strokes) {
    ctx.beginPath();
    stroke.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (stroke.length === 1) ctx.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
    ctx.stroke();
  }
}

function padPoint(event) {
  const canvas = $('pad');
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

function schedulePredict(delay) {
  clearTimeout(pad.timer);
  pad.timer = setTimeout(predictDrawing, delay);
}

function setupPad() {
  const canvas = $('pad');
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    pad.drawing = true;
    state.photo = null; // drawing takes the photo's place
    pad.strokes.push([padPoint(e)]);
    redrawPad();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!pad.drawing) return;
    pad.strokes[pad.strokes.length - 1].push(padPoint(e));
    redrawPad();
    schedulePredict(150); // while drawing: debounced
  });
  const end = () => {
    if (!pad.drawing) return;
    pad.drawing = false;
    schedulePredict(0);
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => { pad.strokes = []; redrawPad(); resetPrediction(); });
  $('undo').addEventListener('click', () => { pad.strokes.pop(); redrawPad(); schedulePredict(0); });
}

// The ink of the pad as floats in [0,1] (strokes are opaque on transparent).
function padInk() {
  const canvas = $('pad');
  const data = padContext().getImageData(0, 0, canvas.width, canvas.height).data;
  const ink = new Float32Array(canvas.width * canvas.height);
  for (let i = 0; i < ink.length; i++) ink[i] = data[4 * i + 3] / 255;
  return { ink, w: canvas.width, h: canvas.height };
}

// Area-averaging resample of src (sw x sh) to dw x dh.
function resample(src, sw, sh, dw, dh) {
  const out = new Float32Array(dw * dh);
  const sx = sw / dw, sy = sh / dh;
  for (let y = 0; y < dh; y++) {
    const y0 = y * sy, y1 = y0 + sy;
    for (let x = 0; x < dw; x++) {
      const x0 = x * sx, x1 = x0 + sx;
      let sum = 0, area = 0;
      for (let j = Math.floor(y0); j < Math.min(sh, Math.ceil(y1)); j++) {
        const cy = Math.min(y1, j + 1) - Math.max(y0, j);
        for (let i = Math.floor(x0); i < Math.min(sw, Math.ceil(x1)); i++) {
          const c = cy * (Math.min(x1, i + 1) - Math.max(x0, i));
          sum += c * src[j * sw + i];
          area += c;
        }
      }
      out[y * dw + x] = area ? sum / area : 0;
    }
  }
  return out;
}

// What the model sees: the server's MNIST-style steps for digit models (crop to
// the ink, fit the longer side into 20 pixels, centre of mass to the middle),
// the whole frame resized for the others. null while the pad is empty.
function modelInput() {
  const { ink, w, h } = padInk();
  let max = 0;
  for (const v of ink) max = Math.max(max, v);
  if (max === 0) return null;
  const mode = state.detail ? state.detail.image_preprocess : 'digit';
  if (mode !== 'digit') return resample(ink, w, h, 28, 28);
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (ink[y * w + x] > 0.1 * max) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1, side = Math.max(bw, bh);
  const nw = Math.max(1, Math.round(bw * 20 / side)), nh = Math.max(1, Math.round(bh * 20 / side));
  const crop = new Float32Array(bw * bh);
  for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) crop[y * bw + x] = ink[(y0 + y) * w + x0 + x];
  const fit = resample(crop, bw, bh, nw, nh);
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < nh; y++)
    for (let x = 0; x < nw; x++) { const v = fit[y * nw + x]; mass += v; mx += v * x; my += v * y; }
  const dx = Math.round(14 - mx / mass), dy = Math.round(14 - my / mass);
  const out = new Float32Array(784);
  for (let y = 0; y < nh; y++)
    for (let x = 0; x < nw; x++) {
      const tx = x + dx, ty = y + dy;
      if (tx >= 0 && tx < 28 && ty >= 0 && ty < 28) out[ty * 28 + tx] = Math.min(1, fit[y * nw + x]);
    }
  return out;
}

// Gray pixels (row by row, the canvas's size) times scale, as an opaque image.
function paintImage(canvas, pixels, scale = 1) {
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < canvas.width * canvas.height; i++) {
    const v = Math.round(pixels[i] * scale);
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

// ---------- a photo's preprocessing steps ----------

// What each of the server's steps (core/image.c) did; a step without a title
// here is shown by the name the server gave it.
const STEP_TITLES = {
  decoded: 'Decoded', illumination: 'Light evened out', ink: 'Ink from paper',
  digit: 'Digit kept', stroke: 'Pen adjusted', input: 'Model input',
};

// The server's trace of a photo (?trace=1: [{step, width, height, pixels}]) as
// a strip of small labelled images, in order; hidden when there is none (a
// drawing: the page prepares it itself and sends the 28x28 pixels).
function showSteps(steps = []) {
  const strip = $('steps-strip');
  strip.replaceChildren();
  steps.forEach((s, i) => {
    const title = STEP_TITLES[s.step] || s.step;
    const canvas = document.createElement('canvas');
    canvas.width = s.width;
    canvas.height = s.height;
    paintImage(canvas, s.pixels);
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `Step ${i + 1} of ${steps.length}, ${title} ` +
                        `(${s.step}): ${s.width}x${s.height}, ink white on black`);
    const caption = document.createElement('figcaption');
    caption.textContent = `${i + 1}. ${title}`;
    const figure = document.createElement('figure');
    figure.append(canvas, caption);
    const item = document.createElement('li');
    item.dataset.step = s.step;
    item.append(figure);
    strip.append(item);
  });
  $('steps-caption').textContent = steps.length
    ? `How the server prepared the photo: ${steps.length} steps, from the file to what the model sees`
    : '';
  $('steps').hidden = !steps.length;
}

// ---------- explanations ----------

// The image on show (drawing or photo): a newer one makes late answers stale.
const view = { seq: 0 };
const GALLERY_STEPS = 32; // a thumbnail's map needs fewer integration steps

// An attribution map (rows, from /explain) over the image it explains: red
// where a pixel adds to the class's score, blue where it takes away, more
// opaque the larger its share of the largest.
function paintExplanation(canvas, rows) {
  const ctx = canvas.getContext('2d');
  const values = rows.flat();
  const img = ctx.createImageData(canvas.width, canvas.height);
  const max = Math.max(...values.map(Math.abs)) || 1;
  values.forEach((v, i) => {
    const alpha = Math.round(230 * Math.sqrt(Math.min(1, Math.abs(v) / max)));
    img.data.set(v >= 0 ? [255, 60, 30, alpha] : [40, 130, 255, alpha], 4 * i);
  });
  ctx.putImageData(img, 0, 0);
  canvas.dataset.max = max;
}

function clearExplanation(canvas) {
  canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
  delete canvas.dataset.max;
}

// The explanation of the image on show, from request(); its answer, or
// undefined when it failed or a newer image took its place.
async function explainShown(request, seq, what) {
  try {
    const x = await request();
    if (seq !== view.seq) return undefined;
    const e = x.explanation;
    paintExplanation($('preview-explain'), e.attributions);
    $('explain-caption').textContent = `Explanation of ${e.label}: red adds to its ${e.score}, ` +
      `blue takes away (integrated gradients from black, ${e.steps} steps; they miss ` +
      `${(e.score_input - e.score_baseline).toFixed(3)} by ${e.delta.toFixed(3)})`;
    state.explained = x;
    clearError();
    return x;
  } catch (err) {
    if (seq === view.seq) showError(`${what}: ${err.message}`);
    return undefined;
  }
}

// A photo or scan, preprocessed by the server: its steps, the image it saw,
// its prediction and the explanation, from one request (the pad is cleared:
// one image on show).
async function explainPhoto(file) {
  if (!state.model || !file) return;
  const seq = ++view.seq;
  state.photo = file; // explained again when another model is picked
  pad.strokes = [];
  redrawPad();
  showSteps();
  const form = new FormData();
  form.append('image', file);
  const x = await explainShown(() => api(`/explain?${modelQuery()}&trace=1`, { method: 'POST', body: form }),
                               seq, 'The photo was refused');
  if (!x) return;
  showSteps(x.preprocessing);
  paintImage($('preview'), x.image.flat(), 255);
  showPrediction(x);
}

// Each gallery card's map over its image, one request for the whole batch.
async function explainGallery(samples, overlays) {
  try {
    const answer = await postJSON(`/explain?${modelQuery()}&steps=${GALLERY_STEPS}`,
                                  { pixels: samples.map((s) => s.pixels.map((v) => v / 255)) });
    (Array.isArray(answer) ? answer : [answer]).forEach((x, k) => {
      paintExplanation(overlays[k], x.explanation.attributions);
      overlays[k].closest('.card').dataset.explained = x.explanation.class;
    });
  } catch (e) {
    showError(`Gallery explanations: ${e.message}`);
  }
}

function resetPrediction() {
  view.seq++;
  paintImage($('preview'), new Float32Array(784), 255);
  clearExplanation($('preview-explain'));
  $('explain-caption').textContent = '';
  state.explained = null;
  showSteps();
  $('guess').textContent = 'Draw a digit';
  drawBars($('bars'), null, state.detail ? state.detail.classes : []);
}

function showPrediction(p) {
  const best = p.probabilities[p.prediction];
  $('guess').textContent = `Guessed ${p.label} (${(best * 100).toFixed(1)}%)`;
  drawBars($('bars'), p.probabilities, p.classes, p.prediction);
}

async function predictDrawing() {
  if (!state.model) return;
  const pixels = modelInput();
  if (!pixels) return resetPrediction(); // nothing is predicted while the pad is empty
  const seq = ++view.seq;
  showSteps(); // a photo's steps go with the photo
  paintImage($('preview'), pixels, 255);
  const body = { pixels: Array.from(pixels, (v) => +v.toFixed(4)) };
  try {
    const p = await postJSON(`/predict?${modelQuery()}`, body);
    if (seq !== view.seq) return;
    showPrediction(p);
    clearError();
  } catch (e) {
    return showError(`Prediction failed: ${e.message}`);
  }
  await explainShown(() => postJSON(`/explain?${modelQuery()}`, body), seq, 'Explanation failed');
}

// ---------- bar charts ----------

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The demo notebook's chart: bars 0-9 with class names, y from 0 to 1, a grid.
function drawBars(svg, probs, classes, best) {
  svg.replaceChildren();
  const W = 320, H = 200, left = 28, bottom = 40, top = 8, plotH = H - top - bottom;
  for (const g of [0, 0.25, 0.5, 0.75, 1]) {
    const y = top + plotH * (1 - g);
    svg.append(el('line', { class: 'grid', x1: left, x2: W - 4, y1: y, y2: y }));
    svg.append(el('text', { x: left - 4, y: y + 3, 'text-anchor': 'end' }, g.toFixed(2)));
  }
  const n = classes.length || 10, slot = (W - left - 4) / n;
  for (let c = 0; c < n; c++) {
    const p = probs ? probs[c] : 0;
    const h = plotH * p, x = left + c * slot + slot * 0.15;
    const bar = el('rect', { class: c === best ? 'bar best' : 'bar', x, y: top + plotH - h,
                             width: slot * 0.7, height: h, 'data-class': classes[c] ?? c, 'data-p': p });
    bar.append(el('title', {}, `${classes[c] ?? c}: ${(p * 100).toFixed(2)}%`));
    svg.append(bar);
    const name = String(classes[c] ?? c);
    svg.append(el('text', { x: x + slot * 0.35, y: H - bottom + 12, 'text-anchor': 'end',
                            transform: name.length > 2 ? `rotate(-35 ${x + slot * 0.35} ${H - bottom + 12})` : '' },
                  name.length > 9 ? name.slice(0, 8) + '…' : name));
  }
}

// ---------- models ----------

async function loadModels(select) {
  const list = await api('/models');
  state.models = list.models;
  const picker = $('model');
  const previous = select || (state.model && `${state.model.name}:${state.model.version}`);
  picker.replaceChildren();
  for (const m of list.models)
    for (const v of [...m.versions].reverse()) {
      const opt = document.createElement('option');
      opt.value = `${m.name}:${v}`;
      opt.textContent = `${m.name} v${v}`;
      picker.append(opt);
    }
  const want = previous && [...picker.options].some((o) => o.value === previous) ? previous
    : [...picker.options].find((o) => o.value.startsWith(`${list.default}:`))?.value;
  if (want) picker.value = want;
  await chooseModel();
}

async function chooseModel() {
  const [name, version] = $('model').value.split(':');
  if (!name) return;
  state.model = { name, version: +version };
  state.detail = await api(`/models/${encodeURIComponent(name)}/versions/${version}`);
  renderModelView(state.detail);
  resetPrediction();
  if (pad.strokes.length) predictDrawing();
  else if (state.photo) explainPhoto(state.photo);
  // drawing makes little sense for clothes: the gallery leads there
  $('draw-section').style.order = state.detail.image_preprocess === 'digit' ? 0 : 1;
  showGridReport(state.detail).catch((e) => showError(e.message));
  await loadGallery();
}

function renderModelView(d) {
  $('model-title').textContent = `Model: ${d.name} v${d.version}`;
  const t = d.test;
  $('model-metrics').textContent = t
    ? `Test accuracy ${(t.accuracy * 100).toFixed(2)}%, test loss ${t.loss.toFixed(4)} on ${t.samples ?? ''} ${d.dataset} samples`
    : `${d.dataset}: no test metrics recorded`;
  const body = $('summary').tBodies[0];
  body.replaceChildren();
  // Keras's layer and class names, as model.summary() prints them
  const keras = { dense: ['dense', 'Dense'], conv2d: ['conv2d', 'Conv2D'], flatten: ['flatten', 'Flatten'],
                  maxpool2d: ['max_pooling2d', 'MaxPooling2D'], dropout: ['dropout', 'Dropout'],
                  add: ['add', 'Add'], concatenate: ['concatenate', 'Concatenate'],
                  average_pooling2d: ['average_pooling2d', 'AveragePooling2D'],
                  global_average_pooling2d: ['global_average_pooling2d', 'GlobalAveragePooling2D'],
                  activation: ['activation', 'Activation'],
                  random_translation: ['random_translation', 'RandomTranslation'],
                  random_rotation: ['random_rotation', 'RandomRotation'],
                  random_zoom: ['random_zoom', 'RandomZoom'], random_flip: ['random_flip', 'RandomFlip'],
                  leaky_relu: ['leaky_re_lu', 'LeakyReLU'], elu: ['elu', 'ELU'] };
  const counts = {};
  for (const l of d.layers) {
    const [name, cls] = keras[l.type] || [l.type, l.type];
    const k = counts[l.type] = (counts[l.type] ?? -1) + 1;
    const row = body.insertRow();
    row.insertCell().textContent = `${name}${k ? '_' + k : ''} (${cls})`;
    row.insertCell().textContent = `(None, ${l.output_shape.join(', ')})`;
    const p = row.insertCell();
    p.textContent = l.params.toLocaleString('en');
    p.className = 'num';
  }
  $('summary').tFoot.innerHTML = `<tr><th colspan="2">Total params</th><th class="num">${d.params.toLocaleString('en')}</th></tr>`;
  plotCurves($('history'), d.history || []);
  renderConfusion(t ? t.confusion_matrix : null, d.classes);
}

function renderConfusion(matrix, classes) {
  const table = $('confusion');
  table.replaceChildren();
  if (!matrix) return;
  const head = table.createTHead().insertRow();
  head.append(document.createElement('th'));
  for (const c of classes) {
    const th = document.createElement('th');
    th.textContent = c;
    th.scope = 'col';
    head.append(th);
  }
  const body = table.createTBody();
  matrix.forEach((row, t) => {
    const tr = body.insertRow();
    const th = document.createElement('th');
    th.textContent = classes[t];
    th.scope = 'row';
    tr.append(th);
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, p) => {
      const td = tr.insertCell();
      const share = count / total;
      td.textContent = count;
      td.dataset.count = count;
      td.title = `true ${classes[t]}, predicted ${classes[p]}: ${count} (${(share * 100).toFixed(1)}%)`;
      td.style.background = `rgba(47, 95, 208, ${Math.min(1, share * 1.2).toFixed(3)})`;
      td.style.color = share > 0.45 ? '#fff' : '#1d2330';
    });
  });
}

// Loss (left axis) and accuracy (right axis, 0 to 1) by epoch; validation dashed.
// A learning rate that changes (a schedule, reduce_lr_on_plateau) is drawn grey
// on the right axis as a fraction of its largest value.
function plotCurves(canvas, history) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, L = 44, R = 44, T = 30, B = 28; // legend above the plot
  ctx.clearRect(0, 0, W, H);
  ctx.font = '11px system-ui, sans-serif';
  canvas.dataset.points = history.length;
  if (!history.length) {
    ctx.fillStyle = '#5b6475';
    ctx.fillText('No epochs yet', L, H / 2);
    return;
  }
  const losses = history.flatMap((e) => [e.loss, e.val_loss]).filter((v) => v !== undefined);
  const maxLoss = Math.max(...losses) * 1.05 || 1;
  const n = history.length;
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1));
  const yl = (v) => T + (H - T - B) * (1 - v / maxLoss);
  const ya = (v) => T + (H - T - B) * (1 - v);
  ctx.strokeStyle = '#d7dce5';
  ctx.fillStyle = '#5b6475';
  for (let g = 0; g <= 4; g++) {
    const y = T + (H - T - B) * g / 4;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.fillText((maxLoss * (1 - g / 4)).toFixed(2), 4, y + 4);
    ctx.fillText((1 - g / 4).toFixed(2), W - R + 6, y + 4);
  }
  ctx.fillText('epoch', W / 2 - 14, H - 6);
  const series = [
    ['loss', '#b3261e', yl, []], ['val_loss', '#b3261e', yl, [5, 4]],
    ['accuracy', '#2f5fd0', ya, []], ['val_accuracy', '#2f5fd0', ya, [5, 4]],
  ];
  const rates = history.map((e) => e.learning_rate).filter((v) => v !== undefined);
  const maxRate = Math.max(...rates);
  const rateVaries = rates.length > 1 && maxRate > 0 && rates.some((v) => v !== rates[0]);
  if (rateVaries) series.push(['learning_rate', '#8a8f99', (v) => ya(v / maxRate), [2, 3]]);
  for (const [key, color, y, dash] of series) {
    const pts = history.map((e, i) => [x(i), e[key]]).filter(([, v]) => v !== undefined);
    if (!pts.length) continue;
    ctx.strokeStyle = color;
    ctx.setLineDash(dash);
    ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach(([px, v], i) => (i ? ctx.lineTo(px, y(v)) : ctx.moveTo(px, y(v))));
    ctx.stroke();
    for (const [px, v] of pts) { ctx.beginPath(); ctx.arc(px, y(v), 2.5, 0, 7); ctx.fillStyle = color; ctx.fill(); }
  }
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
  const legend = [['loss', '#b3261e', []], ['val_loss', '#b3261e', [5, 4]], ['accuracy', '#2f5fd0', []], ['val_accuracy', '#2f5fd0', [5, 4]]];
  if (rateVaries) legend.push([`lr (max ${maxRate.toPrecision(2)})`, '#8a8f99', [2, 3]]);
  const step = Math.min(100, (W - L - 8) / legend.length);
  legend.forEach(([name, color, dash], i) => {
    const lx = L + 8 + i * step;
    ctx.strokeStyle = color; ctx.setLineDash(dash);
    ctx.beginPath(); ctx.moveTo(lx, 10); ctx.lineTo(lx + 18, 10); ctx.stroke();
    ctx.setLineDash([]); ctx.fillStyle = '#1d2330'; ctx.fillText(name, lx + 22, 14);
  });
}

// ---------- gallery ----------

async function loadGallery() {
  const d = state.detail;
  const set = state.datasets.find((s) => s.name === d.dataset);
  const box = $('gallery');
  if (!set) {
    box.textContent = `The dataset ${d.dataset} is not on this server.`;
    return;
  }
  const picks = Array.from({ length: 12 }, () => Math.floor(Math.random() * set.test_samples));
  try {
    const samples = await Promise.all(picks.map((i) => api(`/datasets/${d.dataset}/samples/${i}?format=json`)));
    const preds = await postJSON(`/predict?${modelQuery()}`, { pixels: samples.map((s) => s.pixels.map((v) => v / 255)) });
    box.replaceChildren();
    const overlays = [];
    let right = 0;
    samples.forEach((s, k) => {
      const p = preds[k], ok = p.prediction === s.label;
      right += ok;
      const card = document.createElement('div');
      card.className = 'card';
      card.dataset.label = s.label;
      card.dataset.pred = p.prediction;
      card.dataset.correct = ok;
      const title = document.createElement('h3');
      title.className = ok ? 'correct' : 'incorrect';
      title.textContent = ok ? 'CORRECT' : 'INCORRECT';
      const img = document.createElement('canvas');
      img.width = img.height = 28;
      paintImage(img, s.pixels);
      img.setAttribute('aria-label', `test sample ${s.index}`);
      const over = document.createElement('canvas');
      over.width = over.height = 28;
      over.className = 'overlay';
      over.setAttribute('aria-label', `explanation of the guess for test sample ${s.index}`);
      overlays.push(over);
      const stack = document.createElement('div');
      stack.className = 'stack';
      stack.append(img, over);
      const label = document.createElement('div');
      label.className = 'label';
      label.textContent = `Label = ${s.label_name} · guessed ${p.label}`;
      const svg = document.createElementNS(SVG, 'svg');
      svg.setAttribute('viewBox', '0 0 100 40');
      svg.setAttribute('preserveAspectRatio', 'none');
      p.probabilities.forEach((v, c) => {
        const cls = c === s.label ? 'bar truth' : c === p.prediction ? 'bar wrong' : 'bar';
        svg.append(el('rect', { class: cls, x: c * 10 + 1.5, y: 40 - 38 * v, width: 7, height: 38 * v }));
      });
      card.append(title, stack, label, svg);
      box.append(card);
    });
    $('gallery-score').textContent = `${right} of ${samples.length} correct`;
    applyMistakeFilter();
    explainGallery(samples, overlays);
  } catch (e) {
    showError(`Gallery: ${e.message}`);
  }
}

function applyMistakeFilter() {
  const only = $('mistakes').checked;
  for (const card of $('gallery').children) card.hidden = only && card.dataset.correct === 'true';
}

// ---------- training ----------

// A schedule's peak rate, the one a learning-rate grid (and this form) replaces:
// a cosine decay's warmup_target when it warms up, else initial_learning_rate.
function schedulePeakKey(rate) {
  const c = rate.config || rate;
  return c.warmup_target !== undefined && c.warmup_target !== null ? 'warmup_target' : 'initial_learning_rate';
}

function fillForm(spec) {
  $('t-name').value = spec.name;
  $('t-dataset').value = spec.dataset;
  $('t-optimizer').value = spec.optimizer.type;
  const tidy = (v) => +(+v).toPrecision(6); // specs carry float32 values: 0.001 not 0.0010000000474
  const rate = spec.optimizer.learning_rate;
  $('t-lr').value = tidy(typeof rate === 'object' ? (rate.config || rate)[schedulePeakKey(rate)] : rate);
  $('t-epochs').value = spec.epochs;
  $('t-batch').value = spec.batch_size;
  $('t-split').value = tidy(spec.validation_split);
  $('t-es').value = spec.early_stopping ? spec.early_stopping.monitor : '';
  $('t-patience').value = spec.early_stopping ? spec.early_stopping.patience : 2;
  $('t-layers').value = JSON.stringify(spec.layers, null, 1).replace(/\n\s*(?=[^{\s])/g, ' ');
}

function formSpec() {
  const base = state.specs.find((s) => s.name === $('preset').value) || {};
  const spec = JSON.parse(JSON.stringify(base));
  spec.name = $('t-name').value;
  spec.dataset = $('t-dataset').value;
  const type = $('t-optimizer').value;
  // The preset's own optimizer keys (a schedule, weight_decay, clipnorm, ...) stay when its type does.
  const same = base.optimizer && base.optimizer.type === type;
  spec.optimizer = same ? spec.optimizer : { type };
  const rate = spec.optimizer.learning_rate;
  if (same && rate && typeof rate === 'object') (rate.config || rate)[schedulePeakKey(rate)] = +$('t-lr').value;
  else spec.optimizer.learning_rate = +$('t-lr').value;
  spec.epochs = +$('t-epochs').value;
  spec.batch_size = +$('t-batch').value;
  delete spec.validation_data;
  spec.validation_split = +$('t-split').value || 0;
  if (base.validation_data && !spec.validation_split) spec.validation_data = base.validation_data;
  const monitor = $('t-es').value;
  spec.early_stopping = monitor ? { monitor, patience: +$('t-patience').value, restore_best: true } : null;
  if (!spec.early_stopping) delete spec.early_stopping;
  spec.layers = JSON.parse($('t-layers').value);
  return spec;
}

function authHeaders() {
  const token = $('t-token').value;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function startTraining(event) {
  event.preventDefault();
  let spec;
  try {
    spec = formSpec();
  } catch (e) {
    return showError(`The layers are not valid JSON: ${e.message}`);
  }
  try {
    const job = await postJSON('/train', spec, authHeaders());
    clearError();
    follow(job.id);
    await loadJobs();
  } catch (e) {
    showError(e.status === 401 ? `${e.message}: enter the server's token` : `Training refused: ${e.message}`);
    if (e.status === 401 || e.status === 403) $('t-token').focus();
  }
}

// Live curves from the job's event stream.
function follow(id) {
  if (state.streams[id]) return;
  const history = [];
  state.live = { id, history };
  const source = new EventSource(`/jobs/${id}/events`);
  state.streams[id] = source;
  $('curve-title').textContent = `Live curves: job ${id}`;
  source.addEventListener('epoch', (e) => {
    history.push(JSON.parse(e.data));
    if (state.live && state.live.id === id) plotCurves($('curves'), history);
    updateJob(id, { epoch: history.length });
  });
  source.addEventListener('progress', (e) => updateJob(id, JSON.parse(e.data)));
  source.addEventListener('done', async (e) => {
    source.close();
    delete state.streams[id];
    const job = JSON.parse(e.data);
    await loadJobs();
    if (job.status === 'succeeded') {
      $('status').textContent = `Job ${id} trained ${job.result.model} v${job.result.version}: ${(job.result.test_accuracy * 100).toFixed(2)}% test accuracy`;
      await loadModels();
    } else if (job.status === 'failed') {
      showError(`Job ${id} failed: ${job.error}`);
    }
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) delete state.streams[id]; };
}

function updateJob(id, fields) {
  const job = state.jobs.find((j) => j.id === id);
  if (job) { Object.assign(job, fields); renderJobs(); }
}

async function loadJobs() {
  const list = await api('/jobs');
  state.jobs = list.jobs;
  renderJobs();
  for (const j of state.jobs) if (j.status === 'running' || j.status === 'queued') follow(j.id);
}

function renderJobs() {
  const body = $('jobs').tBodies[0];
  body.replaceChildren();
  for (const j of [...state.jobs].reverse().slice(0, 20)) {
    const row = body.insertRow();
    row.dataset.id = j.id;
    row.dataset.status = j.status;
    row.insertCell().textContent = j.id;
    row.insertCell().textContent = j.spec.name;
    const st = row.insertCell();
    st.textContent = j.status;
    st.className = `state-${j.status}`;
    row.insertCell().textContent = `${j.epoch || 0}/${j.epochs}`;
    const acc = row.insertCell();
    acc.className = 'num';
    acc.textContent = j.result ? `${(j.result.test_accuracy * 100).toFixed(2)}%` : '';
    const actions = row.insertCell();
    if (j.status === 'running' || j.status === 'queued') {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary';
      b.textContent = 'Cancel';
      b.addEventListener('click', async () => {
        try {
          await api(`/jobs/${j.id}`, { method: 'DELETE', headers: authHeaders() });
          await loadJobs();
        } catch (e) {
          showError(`Cancel refused: ${e.message}`);
        }
      });
      actions.append(b);
    } else if (j.history && j.history.length) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary';
      b.textContent = 'Curves';
      b.addEventListener('click', () => {
        state.live = { id: j.id, history: j.history };
        $('curve-title').textContent = `Curves: job ${j.id}`;
        plotCurves($('curves'), j.history);
      });
      actions.append(b);
    }
  }
}

// ---------- grid sweep ----------

// A version trained as a grid point (`mnistd train --grid-index`, its meta's
// grid) shows the whole grid's table, read back from the model's versions
// (GET /models/{name}/grid, as `mnistd grid-report`); any other hides it.
async function showGridReport(detail) {
  const section = $('grid-section');
  if (!detail.training?.grid) {
    section.hidden = true;
    return;
  }
  const g = await api(`/models/${encodeURIComponent(detail.name)}/grid`);
  if (state.detail !== detail) return; // another model was chosen meanwhile
  $('grid-title').textContent = `Grid sweep: ${g.name}`;
  const best = g.rows.find((r) => r.version === g.best_version);
  $('grid-summary').textContent = `${g.points} points, ${g.rows.length} trained; ` +
    `not trained yet: ${g.missing.length ? g.missing.join(', ') : 'none'}. ` +
    `Best: point ${best.index} (v${best.version}), test accuracy ${(best.test_accuracy * 100).toFixed(2)}%.`;
  const body = $('grid-table').tBodies[0];
  body.replaceChildren();
  for (const r of g.rows) {
    const row = body.insertRow();
    row.dataset.version = r.version;
    if (r === best) {
      row.className = 'best';
      row.setAttribute('aria-label', `best point, version ${r.version}`);
    }
    const cells = [[r.index, 'num'], [+r.learning_rate.toPrecision(6), 'num'], [r.activation, ''], [r.epochs, 'num'],
                   [r.seconds.toFixed(2), 'num'], [r.best_train_accuracy.toFixed(4), 'num'],
                   [r.test_accuracy.toFixed(4), 'num']];
    for (const [text, cls] of cells) {
      const cell = row.insertCell();
      cell.textContent = text;
      cell.className = cls;
    }
    // the version serves the drawing pad and the gallery when chosen
    const pick = document.createElement('button');
    pick.type = 'button';
    pick.className = 'secondary version';
    pick.textContent = `v${r.version}`;
    pick.title = `Use ${g.name} v${r.version}`;
    pick.addEventListener('click', () => {
      $('model').value = `${g.name}:${r.version}`;
      chooseModel().catch((e) => showError(e.message));
    });
    const cell = row.insertCell();
    cell.className = 'num';
    cell.append(pick);
  }
  section.hidden = false;
}

// ---------- start ----------

async function start() {
  setupPad();
  resetPrediction();
  $('model').addEventListener('change', () => chooseModel().catch((e) => showError(e.message)));
  $('another').addEventListener('click', loadGallery);
  $('photo').addEventListener('change', (e) => explainPhoto(e.target.files[0]));
  $('show-explain').addEventListener('change', (e) =>
    document.body.classList.toggle('hide-explanations', !e.target.checked));
  $('mistakes').addEventListener('change', applyMistakeFilter);
  $('train-form').addEventListener('submit', startTraining);
  $('preset').addEventListener('change', () => {
    const spec = state.specs.find((s) => s.name === $('preset').value);
    if (spec) fillForm(spec);
  });
  try {
    const [datasets, specs] = await Promise.all([api('/datasets'), api('/specs')]);
    state.datasets = datasets.datasets;
    state.specs = specs.specs;
    for (const s of state.datasets) $('t-dataset').append(new Option(s.name, s.name));
    for (const s of state.specs) $('preset').append(new Option(s.name, s.name));
    if (state.specs.length) fillForm(state.specs[0]);
    await loadModels();
    await loadJobs();
    plotCurves($('curves'), []);
    $('status').textContent = `${state.models.length} models served`;
  } catch (e) {
    showError(`The server did not answer: ${e.message}`);
  }
}

window.mnistd = { state, modelInput, predictDrawing };
start();
