// gankit explore: the page. Plain JavaScript, no build step; it talks only to the server that
// served it (every URL is relative, so the page also works behind an SSH tunnel or a path prefix).
//
// Each view (grid, interpolation, style mixing, scatter, translation) is a "live view": moving a
// control schedules a render after a short debounce, aborts the view's request still in flight
// and numbers the new one, so a late response never overwrites a newer image. Each section
// carries data-state = pending | loading | ready | error, which the browser tests wait on.
'use strict';

/** Wait this long after the last control move before asking the server (keeps sliders live
 *  without queueing a render for every intermediate value). */
const DEBOUNCE_MS = 80;
/** The longest side, in CSS px, that a sample of the grid is scaled up (or down) to. */
const GRID_CELL_PX = 112;
/** The same for the larger images of the mixing and translation views. */
const BIG_CELL_PX = 192;

const $ = (selector) => document.querySelector(selector);

/** What /api/info said about the run; set once at start-up. */
let info = null;
/** The seeds pinned in the grid (at most two, oldest first): the interpolation's ends. */
const pinned = [];
/** The class each pinned sample was drawn with (conditional runs, classes "each in turn"): the
 *  walk takes the first pin's, so it starts at the very image that was pinned. */
const pinnedLabels = new Map();
/** The image the translation view translates (from the file chooser or a drop). */
let translateFile = null;
/** The parameters of what each view shows now: the Save button saves exactly what is on screen,
 *  even while a newer render is still on its way. */
const shown = {};
/** Each view's schedule function (see liveView). */
const views = {};
/** Whether the fade-in alpha slider was moved since the stage was chosen (see sharedOptions). */
let alphaMoved = false;

// ---------------------------------------------------------------------------------------------
// Messages

const VIEW_LABELS = {
  info: 'Run',
  grid: 'Samples',
  interp: 'Interpolation',
  mix: 'Style mixing',
  scatter: 'Scatter',
  translate: 'Translation',
  latent: 'Projected latent',
  save: 'Save',
};

/** Shows `text` in the one message element (role="alert", so screen readers announce it). */
function showMessage(view, text) {
  const message = $('#message');
  message.textContent = `${VIEW_LABELS[view] || view}: ${text}`;
  message.dataset.view = view;
  $('#message-close').hidden = false;
}

/** Clears the message, but only if `view` put it there: a grid that renders fine must not hide
 *  the translation's complaint about a bad upload. */
function clearMessage(view) {
  const message = $('#message');
  if (view !== undefined && message.dataset.view !== view) return;
  message.textContent = '';
  delete message.dataset.view;
  $('#message-close').hidden = true;
}

// ---------------------------------------------------------------------------------------------
// Talking to the server

/** The server's own sentence for a failed response: JSON {"error": ...} by contract, but a proxy
 *  or werkzeug itself (413) may answer with HTML, which is reduced to its text. */
async function errorText(response) {
  let body = '';
  try {
    body = await response.text();
  } catch {
    // the body is gone; the status line below still says something
  }
  let detail = '';
  try {
    detail = JSON.parse(body).error || '';
  } catch {
    detail = body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
  }
  return detail || `the server answered ${response.status} ${response.statusText}`;
}

/** fetch() whose failures are Errors with a sentence fit for the message element. */
async function request(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new Error(`could not reach the gankit explore server (${err.message}); is it still running?`);
  }
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

async function getJSON(url, options) {
  return (await request(url, options)).json();
}

/** A PNG endpoint's answer as a data: URL, so every image on the page is a data URL (no object
 *  URLs to revoke, and the tests can compare any image with the server's bytes). */
async function getPngDataURL(url, options) {
  const blob = await (await request(url, options)).blob();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error('could not read the image the server sent'));
    reader.readAsDataURL(blob);
  });
}

/** `params` without its empty values (the server then uses its defaults), all as text. */
function compact(params) {
  const out = {};
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') out[key] = String(value);
  }
  return out;
}

function query(params) {
  return new URLSearchParams(compact(params)).toString();
}

// ---------------------------------------------------------------------------------------------
// Live views

/**
 * Makes a live view out of `render(signal, isCurrent)`, an async function that fetches with
 * `signal` and draws its result only while `isCurrent()` holds. Returns `schedule(delay)`.
 */
function liveView(name, render) {
  const section = document.getElementById(`${name}-view`);
  let timer = null;
  let controller = null;
  let sequence = 0;

  async function start() {
    const mine = ++sequence;
    controller = new AbortController();
    const { signal } = controller;
    // Both checks are needed: `aborted` says a control moved since (its render still waits out
    // the debounce, and an answer may already have arrived anyway); the sequence number says a
    // newer render has started.
    const isCurrent = () => mine === sequence && !signal.aborted;
    section.dataset.state = 'loading';
    try {
      await render(signal, isCurrent);
      if (isCurrent()) {
        section.dataset.state = 'ready';
        clearMessage(name);
      }
    } catch (err) {
      if (err.name === 'AbortError' || !isCurrent()) return;
      section.dataset.state = 'error';
      showMessage(name, err.message);
    }
  }

  return function schedule(delay = DEBOUNCE_MS) {
    clearTimeout(timer);
    // Abort at once rather than when the timer fires: the server can drop the stale work now.
    if (controller) controller.abort();
    controller = null;
    section.dataset.state = 'pending';
    timer = setTimeout(start, delay);
  };
}

/** Schedules every view the run shows (after start-up, or a control they all share). */
function refreshAll(names = Object.keys(views)) {
  for (const name of names) if (views[name]) views[name]();
}

// ---------------------------------------------------------------------------------------------
// Parameters shared by the views

/** The seeds the seed box asks for: a start seed (with the grid size), a list or a range. */
function parseSeeds(text, count) {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const start = Number(trimmed);
    return Array.from({ length: count }, (_, i) => start + i);
  }
  const seeds = [];
  for (const part of trimmed.split(',')) {
    const piece = part.trim();
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(piece);
    if (range) {
      const [low, high] = [Number(range[1]), Number(range[2])];
      if (high < low) throw new Error(`the range "${piece}" runs backwards: write it low-high`);
      if (high - low + 1 > info.max_grid) {
        throw new Error(`"${piece}" is ${high - low + 1} seeds; a grid holds at most ${info.max_grid}`);
      }
      for (let seed = low; seed <= high; seed++) seeds.push(seed);
    } else if (/^\d+$/.test(piece)) {
      seeds.push(Number(piece));
    } else {
      throw new Error(`"${piece}" is not a seed: give a number, a list such as 3,9,4 or a range such as 0-7`);
    }
  }
  return seeds;
}

function gridSeeds() {
  return parseSeeds($('#seed').value, Number($('#grid-size').value));
}

/** The options every image view passes on: class, truncation, noise, stage. */
function sharedOptions() {
  const options = {};
  if (info.c_dim > 0) options.class = $('#class').value;
  if (info.truncation) {
    options.psi = $('#psi').value;
    options.cutoff = $('#cutoff').value;
  }
  if (info.noise_modes) options.noise = $('#noise').value;
  if (info.stages) {
    const stage = info.stages[Number($('#stage').value)];
    options.resolution = stage.resolution;
    // Until the slider moves, the stage's own alpha exactly (a trained alpha such as 0.337 lies
    // between the slider's 0.05 steps).
    options.alpha = alphaMoved ? $('#alpha').value : String(stage.alpha ?? 1);
  }
  return options;
}

function chosenLatent() {
  return info.num_ws ? $('#latent').value : '';
}

// ---------------------------------------------------------------------------------------------
// The grid of samples and the pins

async function renderGrid(signal, isCurrent) {
  const latent = chosenLatent();
  const params = latent
    ? { latent, ...sharedOptions() }
    : { seeds: gridSeeds().join(','), ...sharedOptions() };
  const data = await getJSON(`api/grid?${query(params)}`, { signal });
  if (!isCurrent()) return;
  fillGrid(data.images, latent ? [] : data.seeds, data.labels);
  showCommand('grid', data.command);
  shown.grid = compact(params);
}

/** Puts the images into #grid, reusing the sample buttons already there (no flicker while a
 *  slider moves: only the src attributes change). */
function fillGrid(images, seeds, labels) {
  const grid = $('#grid');
  while (grid.children.length > images.length) grid.lastElementChild.remove();
  while (grid.children.length < images.length) grid.append(makeSample());
  images.forEach((src, i) => {
    const button = grid.children[i];
    const seed = seeds[i];
    const img = button.querySelector('img');
    img.src = src;
    if (seed === undefined) {
      button.dataset.seed = '';
      button.disabled = true;
      button.title = `projected latent ${chosenLatent()}`;
      img.alt = button.title;
      button.querySelector('.caption').textContent = chosenLatent();
    } else {
      button.dataset.seed = String(seed);
      button.disabled = false;
      button.title = `seed ${seed}: click to pin`;
      img.alt = `sample of seed ${seed}`;
      const label = labels ? ` · class ${info.classes[labels[i]] ?? labels[i]}` : '';
      button.querySelector('.caption').textContent = `${seed}${label}`;
      button.dataset.label = labels ? String(labels[i]) : '';
    }
  });
  markPins();
}

function makeSample() {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'sample';
  const caption = document.createElement('span');
  caption.className = 'caption';
  caption.setAttribute('aria-hidden', 'true'); // the image's alt text already names the seed
  button.append(document.createElement('img'), caption);
  button.addEventListener('click', () => togglePin(Number(button.dataset.seed), button.dataset.label));
  return button;
}

/** Pins a seed (the oldest of two pins makes way) or unpins it. */
function togglePin(seed, label) {
  const at = pinned.indexOf(seed);
  if (at >= 0) {
    pinned.splice(at, 1);
  } else {
    pinned.push(seed);
    if (label) pinnedLabels.set(seed, label);
    if (pinned.length > 2) pinned.shift();
  }
  markPins();
  if (views.interp) views.interp(0);
}

function markPins() {
  for (const button of $('#grid').children) {
    const on = button.dataset.seed !== '' && pinned.includes(Number(button.dataset.seed));
    button.setAttribute('aria-pressed', String(on));
  }
}

// ---------------------------------------------------------------------------------------------
// Interpolation between the two pinned samples

async function renderInterp(signal, isCurrent) {
  const img = $('#interp');
  if (pinned.length < 2) {
    img.hidden = true;
    $('#interp-help').textContent = pinned.length
      ? `Seed ${pinned[0]} is pinned; pin one more sample.`
      : 'Pin two samples of the grid to see the walk between them.';
    shown.interp = undefined;
    return;
  }
  const [a, b] = pinned;
  const params = { a, b, steps: $('#interp-steps').value, ...sharedOptions() };
  if (params.class === '' && pinnedLabels.has(a)) params.class = pinnedLabels.get(a);
  const src = await getPngDataURL(`api/interp.png?${query(params)}`, { signal });
  if (!isCurrent()) return;
  img.src = src;
  img.style.setProperty('--steps', String(params.steps));
  img.hidden = false;
  const inClass = params.class ? ` (class ${info.classes[params.class] ?? params.class})` : '';
  $('#interp-help').textContent = `From seed ${a} to seed ${b}${inClass}.`;
  shown.interp = compact(params);
}

// ---------------------------------------------------------------------------------------------
// Style mixing

async function renderMix(signal, isCurrent) {
  // A chosen projected latent takes the row seed's place (the server takes one or the other).
  const latent = chosenLatent();
  const row = latent ? { row_latent: latent } : { row: $('#mix-row').value };
  const params = {
    ...row,
    col: $('#mix-col').value,
    layers: $('#mix-layers').value.trim(),
    ...sharedOptions(),
  };
  // Both sides of a mix share one class; "each in turn" has no meaning for two images.
  if (info.c_dim > 0 && !params.class) params.class = '0';
  const data = await getJSON(`api/mix?${query(params)}`, { signal });
  if (!isCurrent()) return;
  $('#mix-row-image').src = data.row;
  $('#mix-col-image').src = data.col;
  $('#mix-image').src = data.image;
  $('#mix-caption').textContent = `mix: layers ${data.layers.join(', ')} from the column`;
  showCommand('mix', data.command);
  shown.mix = compact(params);
}

/** Lights the preset button that matches the layers box (none when it holds a range). */
function markPresets() {
  const value = $('#mix-layers').value.trim();
  for (const button of document.querySelectorAll('.preset')) {
    button.setAttribute('aria-pressed', String(button.dataset.layers === value));
  }
}

// ---------------------------------------------------------------------------------------------
// Scatter of a 2-D run

async function renderScatter(signal, isCurrent) {
  const seeds = parseSeeds($('#seed').value, 1);
  const params = { seed: seeds[0], num: $('#scatter-num').value };
  const src = await getPngDataURL(`api/scatter.png?${query(params)}`, { signal });
  if (!isCurrent()) return;
  $('#scatter').src = src;
  shown.scatter = compact(params);
}

// ---------------------------------------------------------------------------------------------
// Translation

function translateForm() {
  const form = new FormData();
  form.append('image', translateFile, translateFile.name);
  form.append('direction', $('#direction').value);
  return form;
}

async function renderTranslate(signal, isCurrent) {
  if (!translateFile) return;
  const data = await getJSON('api/translate', { method: 'POST', body: translateForm(), signal });
  if (!isCurrent()) return;
  $('#translate-input').src = data.input;
  $('#translated').src = data.translated;
  $('#reconstructed').src = data.reconstructed;
  shown.translate = { direction: data.direction || $('#direction').value, file: translateFile };
}

function chooseTranslateFile(file) {
  if (!file) return;
  translateFile = file;
  $('#translate-drop-help').textContent = `${file.name}: drop another image, or choose another file.`;
  views.translate(0);
}

function wireDropZone() {
  const zone = $('#translate-drop');
  const input = $('#translate-file');
  input.addEventListener('change', () => chooseTranslateFile(input.files[0]));
  // Without preventDefault on dragover the browser would open the dropped file itself.
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add('dragging');
    });
  }
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  // A file dropped beside the zone would make the browser leave the page for it.
  for (const type of ['dragover', 'drop']) window.addEventListener(type, (event) => event.preventDefault());
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    chooseTranslateFile(event.dataTransfer.files[0]);
  });
}

// ---------------------------------------------------------------------------------------------
// Projected latents

async function uploadLatent(file) {
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    const data = await getJSON('api/latent', { method: 'POST', body: form });
    addLatentOption(data.name);
    $('#latent').value = data.name;
    $('#mix-row').disabled = true;
    clearMessage('latent');
    refreshAll(['grid', 'mix']);
  } catch (err) {
    showMessage('latent', err.message);
  } finally {
    $('#latent-file').value = '';
  }
}

function addLatentOption(name) {
  const select = $('#latent');
  if ([...select.options].some((option) => option.value === name)) return;
  select.append(new Option(name, name));
}

// ---------------------------------------------------------------------------------------------
// Saving

/** Writes what `view` shows into RUN/explore/ and says where. */
async function save(view) {
  const out = document.querySelector(`.saved[data-view="${view}"]`);
  const params = shown[view];
  if (!params) {
    showMessage('save', `the ${VIEW_LABELS[view].toLowerCase()} view shows nothing to save yet`);
    return;
  }
  out.textContent = 'saving…';
  try {
    let data;
    if (view === 'translate') {
      // The server needs the image itself again: the same multipart body as the translation.
      const form = new FormData();
      form.append('image', params.file, params.file.name);
      form.append('direction', params.direction);
      data = await getJSON('api/save?view=translate', { method: 'POST', body: form });
    } else {
      data = await getJSON('api/save', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ view, params }),
      });
    }
    out.textContent = `saved ${data.png} and ${data.json}`;
    clearMessage('save');
  } catch (err) {
    out.textContent = '';
    showMessage('save', err.message);
  }
}

/** The `gankit ...` command that reproduces a view, under it. */
function showCommand(view, command) {
  const pre = document.querySelector(`.command[data-view="${view}"]`);
  if (pre) pre.textContent = command ? `$ ${command}` : '';
}

// ---------------------------------------------------------------------------------------------
// Start-up: build the controls the run needs

function describeRun() {
  const parts = [info.run, info.family, info.kind];
  if (info.kind !== 'points') parts.push(`${info.resolution} px, ${info.channels} channel${info.channels === 1 ? '' : 's'}`);
  if (info.c_dim > 0) parts.push(`${info.c_dim} classes`);
  if (info.stage) parts.push(`trained to ${stageLabel(info.stage)}`);
  $('#run-info').textContent = parts.filter(Boolean).join(' · ');
  document.title = `gankit explore: ${info.run}`;
}

/** Scales samples to a sensible on-screen size: a whole multiple of the run's resolution when
 *  that is small (so every pixel becomes an equal block), the target size when it is large. */
function sizeImages() {
  const root = document.documentElement;
  const res = Math.max(1, info.resolution || 1);
  const fit = (target) => (res >= target ? target : res * Math.floor(target / res));
  root.style.setProperty('--cell', `${fit(GRID_CELL_PX)}px`);
  root.style.setProperty('--big', `${fit(BIG_CELL_PX)}px`);
}

/** Marks each image as it loads: one shown larger than it is gets sharp pixel blocks
 *  (image-rendering: pixelated) instead of a blur; one shown smaller keeps smooth scaling. The
 *  check is per image because sizes vary (a ProGAN stage, an uploaded photo to translate). */
function markPixelated(event) {
  const img = event.target;
  if (img.tagName !== 'IMG' || !img.naturalWidth) return;
  const shownWidth = img.getBoundingClientRect().width || img.naturalWidth;
  img.classList.toggle('pixelated', img.naturalWidth < shownWidth);
}

/** "8 px" for a finished stage, "8 px, fading in (alpha 0.25)" for one still growing. */
function stageLabel(stage) {
  const size = `${stage.resolution} px`;
  return stage.alpha === null || stage.alpha >= 1 ? size : `${size}, fading in (alpha ${stage.alpha})`;
}

function fillSelect(select, entries) {
  select.replaceChildren(...entries.map(([value, label]) => new Option(label, value)));
}

function setUpControls() {
  const images = info.kind === 'images';
  const points = info.kind === 'points';
  $('#seed-controls').hidden = !(images || points);
  $('#grid-size-row').hidden = !images;
  $('#scatter-num-row').hidden = !points;
  if (points) {
    $('label[for="seed"]').textContent = 'Seed';
    $('#seed-help').textContent = 'The seed of the points the scatter draws.';
  }
  for (const option of $('#grid-size').options) option.disabled = Number(option.value) > info.max_grid;

  if (images && info.c_dim > 0) {
    $('#class-controls').hidden = false;
    // '' (the default) sends no class: the server then gives image k class k mod c_dim.
    const classes = info.classes.map((name, k) => [String(k), name === String(k) ? name : `${k}: ${name}`]);
    fillSelect($('#class'), [['', 'each in turn'], ...classes]);
  }
  if (images && info.stages) {
    $('#stage-controls').hidden = false;
    fillSelect($('#stage'), info.stages.map((s, i) => [String(i), stageLabel(s)]));
    const trained = info.stages.findIndex(
      (s) => info.stage && s.resolution === info.stage.resolution && s.alpha === info.stage.alpha,
    );
    $('#stage').value = String(trained >= 0 ? trained : info.stages.length - 1);
    fitAlpha();
  }
  if (images && (info.truncation || info.noise_modes)) {
    $('#truncation-controls').hidden = false;
    if (info.truncation) {
      $('#psi').value = String(info.truncation.psi);
      $('#cutoff').value = info.truncation.cutoff ?? '';
      if (info.num_ws) $('#cutoff').max = String(info.num_ws);
    }
    for (const id of ['#psi', '#cutoff']) $(id).disabled = !info.truncation;
    if (info.noise_modes) fillSelect($('#noise'), info.noise_modes.map((mode) => [mode, mode]));
    $('#noise').disabled = !info.noise_modes;
    showPsi();
  }
  if (images && info.num_ws) {
    $('#latent-controls').hidden = false;
    for (const name of info.latents || []) addLatentOption(name);
  }
  const anyControls = [...document.querySelectorAll('.controls .group')].some((group) => !group.hidden);
  document.body.classList.toggle('no-controls', !anyControls);
  if (info.directions) fillSelect($('#direction'), info.directions.map((d) => [d, d.replace('2', ' → ')]));
}

function setUpViews() {
  const images = info.kind === 'images';
  const show = (name, render) => {
    document.getElementById(`${name}-view`).hidden = false;
    views[name] = liveView(name, render);
  };
  if (images) {
    show('grid', renderGrid);
    show('interp', renderInterp);
    if (info.layer_groups) show('mix', renderMix);
  }
  if (info.kind === 'points') show('scatter', renderScatter);
  if (info.kind === 'translation') show('translate', renderTranslate);
  // A layer group the model has no layers of (e.g. "middle" at 8 px) gets no button.
  for (const button of document.querySelectorAll('.preset')) {
    const group = info.layer_groups && info.layer_groups[button.dataset.layers];
    button.hidden = !group || group.length === 0;
  }
}

function showPsi() {
  $('#psi-value').textContent = Number($('#psi').value).toFixed(2);
}

/** The alpha slider for the chosen stage: up to the alpha that stage was trained to (1 for a
 *  finished one), set to it; fixed at 1 at the smallest resolution, which has nothing to fade
 *  from. Called when the stage changes, so moving the slider itself keeps its value. */
function fitAlpha() {
  alphaMoved = false;
  const stage = info.stages[Number($('#stage').value)];
  const smallest = Math.min(...info.stages.map((s) => s.resolution));
  const top = stage.alpha === null ? 1 : stage.alpha;
  const slider = $('#alpha');
  slider.max = String(top);
  slider.value = String(top);
  slider.disabled = stage.resolution === smallest;
  showAlpha();
}

function showAlpha() {
  $('#alpha-value').textContent = Number($('#alpha').value).toFixed(2);
}

/** Which views a control feeds; every input event of it re-renders them. */
function wireControls() {
  const images = ['grid', 'interp', 'mix'];
  const on = (selector, names, extra) => {
    const element = $(selector);
    const handler = () => {
      if (extra) extra();
      refreshAll(names);
    };
    // 'input' fires on every slider step and every keystroke, and on <select> changes too.
    element.addEventListener('input', handler);
  };
  on('#seed', ['grid', 'scatter']);
  on('#grid-size', ['grid']);
  on('#scatter-num', ['scatter']);
  on('#class', images);
  on('#stage', images, fitAlpha);
  on('#alpha', images, () => {
    alphaMoved = true;
    showAlpha();
  });
  on('#psi', images, showPsi);
  on('#cutoff', images);
  on('#noise', images);
  // A projected latent replaces the grid's seeds and the mix's row seed.
  on('#latent', ['grid', 'mix'], () => {
    $('#mix-row').disabled = Boolean(chosenLatent());
  });
  on('#interp-steps', ['interp']);
  on('#mix-row', ['mix']);
  on('#mix-col', ['mix']);
  on('#mix-layers', ['mix'], markPresets);
  on('#direction', ['translate']);

  $('#random').addEventListener('click', () => {
    // A start seed whose whole grid stays within 0 .. seed_max.
    const count = info.kind === 'images' ? Number($('#grid-size').value) : 1;
    const span = info.seed_max - count + 2;
    $('#seed').value = String(Math.floor(Math.random() * span));
    refreshAll(['grid', 'scatter']);
  });
  for (const button of document.querySelectorAll('.preset')) {
    button.addEventListener('click', () => {
      $('#mix-layers').value = button.dataset.layers;
      markPresets();
      views.mix();
    });
  }
  for (const button of document.querySelectorAll('.save')) {
    button.addEventListener('click', () => save(button.dataset.view));
  }
  $('#latent-file').addEventListener('change', (event) => {
    if (event.target.files[0]) uploadLatent(event.target.files[0]);
  });
  $('#message-close').addEventListener('click', () => clearMessage());
  wireDropZone();
  // 'load' does not bubble: listen in the capture phase to see every image's.
  document.addEventListener('load', markPixelated, true);
}

async function start() {
  wireControls();
  try {
    info = await getJSON('api/info');
  } catch (err) {
    $('#run-info').textContent = 'no run';
    showMessage('info', err.message);
    return;
  }
  describeRun();
  sizeImages();
  setUpControls();
  setUpViews();
  refreshAll();
  document.body.dataset.ready = 'true';
}

start();
