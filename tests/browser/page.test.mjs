// The page in headless Chromium (Debian's /usr/bin/chromium) against the real
// server on a free port. Each check saves a screenshot under OUT_DIR.
//   node page.test.mjs MNISTD_BIN SRC_DIR DATA_DIR OUT_DIR
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeGrid } from '../lib/grid.mjs';
import { startServer } from '../lib/serve.mjs';

const [bin, src, dataDir, outDir] = process.argv.slice(2);
fs.mkdirSync(outDir, { recursive: true });
const TOKEN = 'browser-secret';
const MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
let passed = 0, failed = 0;

const store = fs.mkdtempSync(path.join(os.tmpdir(), 'mnistd-page-'));
fs.cpSync(path.join(src, 'models'), store, { recursive: true });
// points 3 and 0 of a 2 x 2 grid, as two Indexed Job pods would leave them
const gridPoints = makeGrid(bin, store, dataDir, 'page-grid', [3, 0]);
const { base, stop } = await startServer(bin, ['--models', store, '--data', dataDir,
                                                '--static', path.join(src, 'static'),
                                                '--specs', path.join(src, 'specs'), '--token', TOKEN]);

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mnistd-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1280, height: 1000 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = browser.pages()[0] ?? await browser.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(e.message));

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  } finally {
    await page.screenshot({ path: path.join(outDir, `${name}.png`), fullPage: true }).catch(() => {});
  }
}

function assert(cond, message) { if (!cond) throw new Error(message); }

await page.goto(`${base}/`);
await page.waitForFunction(() => document.querySelectorAll('#model option').length >= 2);

await check('draw', async () => {
  assert((await page.locator('#guess').textContent()) === 'Draw a digit', 'an empty pad predicts nothing');
  const box = await page.locator('#pad').boundingBox();
  // a "7": a bar across the top, then a diagonal down
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.25);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.25, { steps: 10 });
  await page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.8, { steps: 15 });
  await page.mouse.up();
  await page.waitForFunction(() => document.getElementById('guess').textContent.startsWith('Guessed'));
  const bars = await page.$$eval('#bars rect.bar', (rs) => rs.map((r) => [r.dataset.class, +r.dataset.p]));
  assert(bars.length === 10, `${bars.length} bars`);
  const sum = bars.reduce((a, [, p]) => a + p, 0);
  assert(Math.abs(sum - 1) < 1e-3, `bars sum to ${sum}`);
  const guess = await page.locator('#guess').textContent();
  assert(bars.some(([c]) => guess.includes(`Guessed ${c} `)), `"${guess}" names no class`);
  const preview = await page.evaluate(() => {
    const c = document.getElementById('preview');
    const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
    let lit = 0, mx = 0, my = 0, mass = 0;
    for (let i = 0; i < 784; i++) {
      const v = d[4 * i];
      lit += v > 128;
      mass += v; mx += v * (i % 28); my += v * Math.floor(i / 28);
    }
    return { w: c.width, h: c.height, lit, cx: mx / mass, cy: my / mass };
  });
  assert(preview.w === 28 && preview.h === 28, `preview is ${preview.w}x${preview.h}`);
  assert(preview.lit > 20, `preview has ${preview.lit} lit pixels`);
  assert(Math.abs(preview.cx - 14) < 1.5 && Math.abs(preview.cy - 14) < 1.5,
         `preview centre of mass at (${preview.cx.toFixed(1)}, ${preview.cy.toFixed(1)})`);
  // a drawing is prepared by the page itself: no server steps to show
  assert(await page.$eval('#steps', (f) => f.hidden), 'preprocessing steps shown for a drawing');
  await page.screenshot({ path: path.join(outDir, 'draw-predicted.png') });
  await page.click('#clear');
  assert((await page.locator('#guess').textContent()) === 'Draw a digit', 'Clear resets the guess');
});

await check('gallery', async () => {
  await page.waitForFunction(() => document.querySelectorAll('#gallery .card').length === 12);
  const cards = await page.$$eval('#gallery .card', (cs) => cs.map((c) => ({
    title: c.querySelector('h3').textContent, label: c.dataset.label, pred: c.dataset.pred,
    cls: c.querySelector('h3').className })));
  for (const c of cards) {
    const want = c.label === c.pred ? 'CORRECT' : 'INCORRECT';
    assert(c.title === want, `a card says ${c.title} for label ${c.label}, guess ${c.pred}`);
    assert(c.cls === want.toLowerCase(), `title class ${c.cls}`);
  }
  await page.check('#mistakes');
  const shown = await page.$$eval('#gallery .card', (cs) => cs.filter((c) => !c.hidden).map((c) => c.dataset.correct));
  assert(shown.every((v) => v === 'false'), 'only mistakes are shown when filtered');
  await page.uncheck('#mistakes');
});

// Each card's explanation over its image: a map painted for its guess.
await check('gallery-explained', async () => {
  await page.waitForFunction(() => [...document.querySelectorAll('#gallery .card')]
    .every((c) => c.dataset.explained !== undefined), null, { timeout: 30000 });
  const cards = await page.$$eval('#gallery .card', (cs) => cs.map((c) => {
    const o = c.querySelector('canvas.overlay');
    const d = o.getContext('2d').getImageData(0, 0, 28, 28).data;
    let painted = 0;
    for (let i = 3; i < d.length; i += 4) painted += d[i] > 0;
    const r = o.getBoundingClientRect(), u = c.querySelector('canvas:not(.overlay)').getBoundingClientRect();
    return { explained: c.dataset.explained, pred: c.dataset.pred, painted,
             over: r.left === u.left && r.top === u.top && r.width === u.width && r.height === u.height };
  }));
  for (const c of cards) {
    assert(c.explained === c.pred, `a card explains class ${c.explained}, its guess is ${c.pred}`);
    assert(c.painted > 20, `a card's map paints ${c.painted} pixels`);
    assert(c.over, 'a card\'s map is not over its image');
  }
});

// A photo-like image (dark ink on off-white paper lit from one side, sensor
// noise, the digit off-centre, 150x140 RGB), encoded as `type` by the page's
// own canvas.
async function photoLike(type) {
  const dataUrl = await page.evaluate((type) => {
    const c = document.createElement('canvas');
    c.width = 150; c.height = 140;
    const ctx = c.getContext('2d');
    const light = ctx.createLinearGradient(0, 0, 150, 0);
    light.addColorStop(0, 'rgb(246, 240, 226)');
    light.addColorStop(1, 'rgb(176, 168, 150)');
    ctx.fillStyle = light;
    ctx.fillRect(0, 0, 150, 140);
    ctx.strokeStyle = 'rgb(40, 38, 50)';
    ctx.lineWidth = 9;
    ctx.lineCap = 'round';
    ctx.beginPath(); // a "7", left of centre and high
    ctx.moveTo(30, 25); ctx.lineTo(80, 25); ctx.lineTo(48, 100);
    ctx.stroke();
    const img = ctx.getImageData(0, 0, 150, 140);
    let seed = 7;
    for (let i = 0; i < img.data.length; i += 4) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const n = (seed / 2147483648 - 0.5) * 16;
      for (let k = 0; k < 3; k++) img.data[i + k] = Math.max(0, Math.min(255, img.data[i + k] + n));
    }
    ctx.putImageData(img, 0, 0);
    return c.toDataURL(type);
  }, type);
  assert(dataUrl.startsWith(`data:${type};`), `the canvas made ${dataUrl.slice(0, 30)}, not ${type}`);
  return Buffer.from(dataUrl.split(',')[1], 'base64');
}

// Uploads a file through the photo input; the answer the page got once it shows.
async function uploadPhoto(name, mimeType, buffer) {
  await page.evaluate(() => { window.mnistd.state.explained = null; });
  await page.setInputFiles('#photo', { name, mimeType, buffer });
  await page.waitForFunction(() => window.mnistd.state.explained &&
                             document.getElementById('explain-caption').textContent.startsWith('Explanation of'),
                             null, { timeout: 30000 });
}

// The strip of preprocessing steps against the server's trace in the answer
// on show: the same steps in the same order, each labelled, captioned and
// painted at its size, the last one the very image the model saw.
async function checkSteps() {
  const s = await page.evaluate(() => {
    const x = window.mnistd.state.explained;
    const items = [...document.querySelectorAll('#steps-strip li')];
    const image = x.image.flat();
    return {
      hidden: document.getElementById('steps').hidden,
      caption: document.getElementById('steps-caption').textContent,
      server: (x.preprocessing || []).map((t) => [t.step, t.width, t.height]),
      shown: items.map((li) => {
        const c = li.querySelector('canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        for (let i = 0; i < d.length; i += 4) lit += d[i] > 64;
        const r = c.getBoundingClientRect();
        return { step: li.dataset.step, w: c.width, h: c.height, shownH: r.height, lit,
                 label: c.getAttribute('aria-label') || '', role: c.getAttribute('role'),
                 caption: li.querySelector('figcaption').textContent,
                 off: c.width * c.height === image.length
                   ? Math.max(...image.map((v, i) => Math.abs(d[4 * i] - Math.round(v * 255)))) : null };
      }),
    };
  });
  assert(!s.hidden, 'the preprocessing steps are hidden');
  const names = s.server.map(([n]) => n);
  assert(names.length >= 5 && names[0] === 'decoded' && names[names.length - 1] === 'input' &&
         ['illumination', 'ink', 'digit'].every((n) => names.includes(n)), `the server's steps: ${names}`);
  assert(JSON.stringify(s.shown.map((t) => [t.step, t.w, t.h])) === JSON.stringify(s.server),
         `the strip shows ${JSON.stringify(s.shown.map((t) => [t.step, t.w, t.h]))}, the server sent ${JSON.stringify(s.server)}`);
  s.shown.forEach((t, i) => {
    assert(t.role === 'img' && t.label.includes(`Step ${i + 1} of ${names.length}`) && t.label.includes(`(${t.step})`),
           `step ${t.step}: label "${t.label}", role ${t.role}`);
    assert(t.caption.startsWith(`${i + 1}. `) && t.caption.length > 4, `step ${t.step}: caption "${t.caption}"`);
    assert(t.shownH > 40, `step ${t.step} is drawn ${t.shownH}px high`);
    assert(t.lit > 10, `step ${t.step} has ${t.lit} lit pixels`);
  });
  const last = s.shown[s.shown.length - 1];
  assert(last.off !== null && last.off <= 1, `the "input" step is off the model's image by ${last.off}`);
  assert(s.caption.includes(`${names.length} steps`), `steps caption "${s.caption}"`);
  return names;
}

// A photo-like PNG uploaded through the file input: the server's steps in a
// strip, the server's 28x28 image on the preview, its prediction in the bars,
// its explanation over the preview.
await check('photo-upload', async () => {
  const capture = await page.$eval('#photo', (i) => [i.accept, i.getAttribute('capture')]);
  assert(capture[0] === 'image/*' && capture[1] === 'environment', `file input ${capture}`);
  const png = await photoLike('image/png');
  fs.writeFileSync(path.join(outDir, 'photo-input.png'), png);
  await uploadPhoto('photo.png', 'image/png', png);
  await checkSteps();
  const shown = await page.evaluate(() => {
    const x = window.mnistd.state.explained;
    const pre = document.getElementById('preview').getContext('2d').getImageData(0, 0, 28, 28).data;
    const over = document.getElementById('preview-explain').getContext('2d').getImageData(0, 0, 28, 28).data;
    const image = x.image.flat(), attr = x.explanation.attributions.flat();
    let worst = 0, top = 0, topAlpha = 0, maxAlpha = 0;
    image.forEach((v, i) => { worst = Math.max(worst, Math.abs(pre[4 * i] - Math.round(v * 255))); });
    attr.forEach((v, i) => {
      if (Math.abs(v) > Math.abs(attr[top])) top = i;
      maxAlpha = Math.max(maxAlpha, over[4 * i + 3]);
    });
    topAlpha = over[4 * top + 3];
    const sum = attr.reduce((a, b) => a + b, 0);
    return { worst, topAlpha, maxAlpha, sum, gap: x.explanation.score_input - x.explanation.score_baseline,
             delta: x.explanation.delta,
             cls: x.explanation.class, prediction: x.prediction, guess: document.getElementById('guess').textContent,
             label: x.label, strokes: window.mnistd.state.photo !== null };
  });
  assert(shown.worst <= 1, `the preview is off the server's image by ${shown.worst}`);
  assert(shown.topAlpha === shown.maxAlpha && shown.maxAlpha > 200,
         `the strongest attribution is drawn with alpha ${shown.topAlpha} of ${shown.maxAlpha}`);
  assert(shown.cls === shown.prediction, `explained ${shown.cls}, predicted ${shown.prediction}`);
  assert(shown.guess.startsWith(`Guessed ${shown.label} `), `guess "${shown.guess}"`);
  const caption = await page.locator('#explain-caption').textContent();
  assert(caption.includes(`miss ${shown.gap.toFixed(3)} by ${shown.delta.toFixed(3)}`),
         `caption "${caption}", score gap ${shown.gap}, delta ${shown.delta}`);
  assert(Math.abs(shown.sum - shown.gap - shown.delta) < 1e-4,
         `the map adds to ${shown.sum}: not the score gap ${shown.gap} plus delta ${shown.delta}`);
  await page.locator('#draw-section').screenshot({ path: path.join(outDir, 'photo-explained.png') });
  // the toggle hides every map, and shows them again
  await page.uncheck('#show-explain');
  const hidden = await page.$$eval('canvas.overlay', (cs) => cs.every((c) => getComputedStyle(c).display === 'none'));
  assert(hidden, 'maps still shown with the toggle off');
  await page.check('#show-explain');
  await page.click('#clear');
  const cleared = await page.$eval('#explain-caption', (c) => c.textContent);
  assert(cleared === '', `Clear leaves "${cleared}"`);
  const strip = await page.$eval('#steps', (f) => [f.hidden, f.querySelectorAll('li').length]);
  assert(strip[0] && strip[1] === 0, `Clear leaves the steps (hidden ${strip[0]}, ${strip[1]} shown)`);
});

// The same photo as a WebP, as a phone's gallery may hold it: read by the
// server's libwebp path, with its steps and the same answer as the PNG's.
await check('photo-upload-webp', async () => {
  await uploadPhoto('photo.png', 'image/png', await photoLike('image/png'));
  const asPng = await page.evaluate(() => window.mnistd.state.explained.prediction);
  const webp = await photoLike('image/webp');
  assert(webp.subarray(0, 4).toString() === 'RIFF' && webp.subarray(8, 12).toString() === 'WEBP',
         'the canvas did not make a WebP');
  fs.writeFileSync(path.join(outDir, 'photo-input.webp'), webp);
  await uploadPhoto('photo.webp', 'image/webp', webp);
  await checkSteps();
  const asWebp = await page.evaluate(() => window.mnistd.state.explained.prediction);
  assert(asWebp === asPng, `the WebP is read as ${asWebp}, the PNG as ${asPng}`);
  await page.locator('#draw-section').screenshot({ path: path.join(outDir, 'photo-webp-steps.png') });
  await page.click('#clear');
});

await check('confusion', async () => {
  await page.selectOption('#model', 'mnist-cnn:1');
  await page.waitForFunction(() => document.querySelectorAll('#confusion td').length === 100);
  const rows = await page.$$eval('#confusion tbody tr', (trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].reduce((a, td) => a + +td.dataset.count, 0)));
  assert(JSON.stringify(rows) === JSON.stringify(MNIST_TEST_COUNTS), `row sums ${rows}`);
  const total = await page.locator('#summary tfoot').textContent();
  assert(total.includes('24,186'), `summary total: ${total}`);
  await page.locator('#model-section').scrollIntoViewIfNeeded();
});

await check('wrong-token', async () => {
  await page.fill('#t-token', 'not-the-token');
  await page.click('#start');
  await page.waitForSelector('#error:not([hidden])');
  const text = await page.locator('#error').textContent();
  assert(text.includes('bearer token is not valid'), `error shown: ${text}`);
});

await check('train', async () => {
  await page.selectOption('#preset', 'mnist-sigmoid16');
  await page.fill('#t-name', 'browser-job');
  await page.fill('#t-epochs', '2');
  await page.fill('#t-token', TOKEN);
  await page.click('#start');
  await page.waitForFunction(() => +document.getElementById('curves').dataset.points >= 1, null, { timeout: 60000 });
  await page.waitForFunction(() => [...document.querySelectorAll('#model option')].some((o) => o.value === 'browser-job:1'),
                             null, { timeout: 60000 });
  const status = await page.$eval('#jobs tbody tr', (tr) => tr.dataset.status);
  assert(status === 'succeeded', `the job ended ${status}`);
  await page.waitForFunction(() => +document.getElementById('curves').dataset.points === 2);
  await page.locator('#train-section').scrollIntoViewIfNeeded();
});

await check('grid-sweep', async () => {
  const before = await page.locator('#model').inputValue();
  assert(await page.locator('#grid-section').isHidden(), `no grid table for ${before}`);
  await page.selectOption('#model', `page-grid:${gridPoints[1].version}`);
  await page.locator('#grid-section').waitFor({ state: 'visible' });
  const rows = await page.$$eval('#grid-table tbody tr', (trs) => trs.map((tr) => ({
    best: tr.classList.contains('best'), version: +tr.dataset.version,
    cells: [...tr.cells].map((c) => c.textContent) })));
  assert(rows.length === 2, `${rows.length} rows, 2 points trained`);
  // sorted by point; each point's own version, rate and activation (trial t: rate t % 2, activation t / 2)
  const want = [[0, gridPoints[1].version, '0.002', 'relu'], [3, gridPoints[0].version, '0.02', 'tanh']];
  want.forEach(([index, version, rate, act], i) => {
    const { cells } = rows[i];
    assert(+cells[0] === index && rows[i].version === version && cells[1] === rate && cells[2] === act,
           `row ${i}: ${cells.join(' | ')}, wanted point ${index} v${version} ${rate} ${act}`);
  });
  const acc = rows.map((r) => +r.cells[6]);
  const bestRows = rows.filter((r) => r.best);
  assert(bestRows.length === 1, `${bestRows.length} rows marked best`);
  assert(+bestRows[0].cells[6] === Math.max(...acc), `best row ${bestRows[0].cells.join(' | ')} of ${acc}`);
  const summary = await page.locator('#grid-summary').textContent();
  assert(summary.includes('4 points, 2 trained') && summary.includes('not trained yet: 1, 2'), summary);
  await page.locator('#grid-section').screenshot({ path: path.join(outDir, 'grid-sweep-table.png') });
  // a row's version button serves that version
  await page.locator('#grid-table tbody tr').nth(1).locator('button').click();
  await page.waitForFunction((v) => document.getElementById('model').value === `page-grid:${v}`,
                             gridPoints[0].version);
  await page.selectOption('#model', before);
  await page.locator('#grid-section').waitFor({ state: 'hidden' });
});

await check('phone', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('#gallery .card').length === 12);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 1, `the page is ${overflow}px wider than a phone`);
  const touch = await page.$eval('#pad', (c) => getComputedStyle(c).touchAction);
  assert(touch === 'none', `touch-action is ${touch}`);
  // a photo's strip of steps scrolls inside its box, never widens the page
  await uploadPhoto('photo.png', 'image/png', await photoLike('image/png'));
  await checkSteps();
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(wide <= 1, `with a photo's steps the page is ${wide}px wider than a phone`);
  await page.locator('#steps').screenshot({ path: path.join(outDir, 'phone-steps.png') });
});

await check('no-console-errors', async () => {
  const real = consoleErrors.filter((e) => !e.includes('401') && !e.includes('403'));
  assert(real.length === 0, real.join(' | '));
});

await browser.close();
fs.rmSync(profile, { recursive: true, force: true });
await stop();
fs.rmSync(store, { recursive: true, force: true });
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
