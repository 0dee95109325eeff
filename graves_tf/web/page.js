// The handwriting page of graves_tf.serve: plain JavaScript, no build step.
//
// It talks to a TF Serving REST API (this page's own server, or the one in the server field / ?server=URL)
// with the signatures of a graves_tf synthesis export: serving_default writes unprimed, generate_primed
// writes in a style. It writes pages as `python -m graves_tf.write` does: without a style the first line is
// written unprimed and the others primed with it; with a style every line is primed with the style.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const PAGE_CHARACTERS = 2000;  // the most characters of one page
  const POINTS_PER_SECOND = 300;  // animation speed, in model pen points
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const STORAGE_KEY = 'graves_tf.my_style';

  const state = {
    config: null, styles: [], choice: 'model', mine: null,
    pad: [], drawing: null,
    written: null, animation: null, requests: [],
  };
  window.graves = state;  // for the curious (and the browser tests)

  class PageError extends Error {}

  // ---- messages ----------------------------------------------------------------------------------------
  function showMessage(text, kind) {
    const el = $('message');
    el.textContent = text || '';
    el.className = kind || '';
    el.hidden = !text;
  }
  function padMessage(text, isError) {
    $('pad-message').textContent = text;
    $('pad-message').className = isError ? 'error' : '';
  }

  // ---- the server ---------------------------------------------------------------------------------------
  function serverURL() {
    return ($('server').value.trim() || location.origin).replace(/\/+$/, '');
  }
  function modelName() {
    return params.get('model') || (state.config && state.config.model_name) || 'synthesis';
  }
  function unreachable() {
    return new PageError(`Cannot reach the server at ${serverURL()}: is it running? ` +
      'Start it with "python -m graves_tf.serve", or correct the server field.');
  }

  async function predict(signature, inputs) {
    const url = `${serverURL()}/v1/models/${encodeURIComponent(modelName())}:predict`;
    const body = JSON.stringify({signature_name: signature, inputs: inputs});
    state.requests.push({signature: signature, inputs: inputs});
    let response;
    try {
      // text/plain keeps the request "simple" (no CORS preflight) for a TF Serving on another port
      response = await fetch(url, {method: 'POST', headers: {'Content-Type': 'text/plain'}, body: body});
    } catch (error) {
      throw unreachable();
    }
    let answer = null;
    try { answer = await response.json(); } catch (error) { answer = null; }
    const said = answer && answer.error ? answer.error : `${response.status} ${response.statusText}`;
    if (response.status === 503) throw new PageError(`The server is busy writing for others; try again in a moment (${said}).`);
    if (!response.ok) throw new PageError(`The server refused: ${said}`);
    if (!answer || !answer.outputs || !answer.outputs.strokes) throw new PageError('The server answered without strokes.');
    return answer.outputs;
  }

  async function checkServer() {
    const status = $('server-status');
    try {
      let response;
      try {
        response = await fetch(`${serverURL()}/v1/models/${encodeURIComponent(modelName())}`);
      } catch (error) {
        throw unreachable();
      }
      const answer = await response.json().catch(() => null);
      if (!response.ok) throw new PageError(`The server answered ${response.status}: ${answer && answer.error ? answer.error : response.statusText}`);
      const v = answer.model_version_status[0];
      status.textContent = `Connected to ${serverURL()}: model "${modelName()}" version ${v.version}, ${v.state}.`;
      status.className = '';
    } catch (error) {
      status.textContent = error.message;
      status.className = 'error';
    }
  }

  // ---- text ---------------------------------------------------------------------------------------------
  function unknownCharacters(text) {
    const known = state.config.characters;
    if (!known) return [];
    const seen = [];
    for (const c of text) if (c !== '\n' && !known.includes(c) && !seen.includes(c)) seen.push(c);
    return seen;
  }
  function checkCharacters(text, what) {
    const unknown = unknownCharacters(text);
    if (unknown.length) {
      throw new PageError(`Cannot write ${unknown.map((c) => `"${c}"`).join(', ')}${what ? ' in ' + what : ''}: ` +
        `the model knows only the characters of IAM-OnDB (letters, digits, space and ` +
        `${state.config.characters.replace(/[A-Za-z0-9 ]/g, '')}).`);
    }
  }
  function wrap(text, width) {  // greedy, like Python's textwrap.wrap; words longer than a line are broken
    const lines = [];
    for (const paragraph of text.split('\n')) {
      let line = '';
      for (let word of paragraph.split(/\s+/).filter(Boolean)) {
        while ([...word].length > width) {
          if (line) { lines.push(line); line = ''; }
          lines.push([...word].slice(0, width).join(''));
          word = [...word].slice(width).join('');
        }
        if (!word) continue;
        if (!line) line = word;
        else if ([...line].length + 1 + [...word].length <= width) line += ' ' + word;
        else { lines.push(line); line = word; }
      }
      if (line) lines.push(line);
    }
    return lines;
  }
  function linesToWrite() {
    const text = $('text').value.replace(/\r/g, '');
    if (!text.trim()) throw new PageError('Type something to write.');
    checkCharacters(text);
    const count = [...text].length;
    if (count > PAGE_CHARACTERS) {
      throw new PageError(`This text is ${count} characters long; the page writes at most ${PAGE_CHARACTERS} at once.`);
    }
    const limit = state.config.limits.max_text_length;
    if ($('page-mode').checked) {
      const width = Math.max(10, Math.min(limit, parseInt($('width').value, 10) || 50));
      return wrap(text, width);
    }
    const lines = text.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter(Boolean);
    for (const line of lines) {
      const n = [...line].length;
      if (n > limit) {
        throw new PageError(`This line is too long: ${n} characters, and one line holds at most ${limit}. ` +
          'Tick "Page" to wrap long text into lines.');
      }
    }
    return lines;
  }

  // ---- pen traces ---------------------------------------------------------------------------------------
  // Offsets are [dx, dy, end_of_stroke] rows in whiteboard units (y down), as the export takes and gives them.
  function offsetsToStrokes(offsets) {
    const strokes = [];
    let x = 0, y = 0, current = [];
    for (const [dx, dy, end] of offsets) {
      x += dx; y += dy;
      current.push([x, y]);
      if (end > 0.5) { strokes.push(current); current = []; }
    }
    if (current.length) strokes.push(current);
    return strokes;
  }
  function median(values) {
    const s = values.slice().sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }
  // A pen trace (strokes of [x, y] points, any units) -> offsets in whiteboard units at the model's rate,
  // exactly as `python -m graves_tf.write --prime_strokes` rescales it (graves_tf.write.load_prime_strokes).
  function traceOffsets(strokes, offsetStd) {
    const kept = strokes.filter((s) => s.length);
    const points = [], ends = [];
    for (const stroke of kept) stroke.forEach((p, i) => { points.push(p); ends.push(i === stroke.length - 1 ? 1 : 0); });
    const offsets = points.map((p, i) => (i === 0 ? [0, 0] : [p[0] - points[i - 1][0], p[1] - points[i - 1][1]]));
    const steps = [];
    for (let i = 1; i < offsets.length; i++) if (!ends[i - 1]) steps.push(Math.hypot(offsets[i][0], offsets[i][1]));
    const positive = steps.filter((s) => s > 0);
    const typical = positive.length ? median(positive) : 1;
    const factor = 0.5 * ((offsetStd[0] + offsetStd[1]) / 2) / typical;
    return offsets.map((o, i) => [o[0] * factor, o[1] * factor, ends[i]]);
  }
  // The export's generate_primed keeps every point_stride-th point of each stroke (data.downsample_strokes);
  // model-rate offsets are split so that it keeps exactly them.
  function toDataRate(offsets, stride) {
    if (stride <= 1) return offsets;
    const out = [];
    offsets.forEach((o, i) => {
      if (i === 0 || offsets[i - 1][2] > 0.5) { out.push(o); return; }
      for (let k = 1; k < stride; k++) out.push([o[0] / stride, o[1] / stride, 0]);
      out.push([o[0] / stride, o[1] / stride, o[2]]);
    });
    return out;
  }

  // ---- writing ------------------------------------------------------------------------------------------
  async function sampleLines(texts, bias, seed, prime, primeText) {
    const limits = state.config.limits, perCharacter = state.config.steps_per_character || 40;
    if (prime && prime.length > limits.max_prime_points) {
      throw new PageError(`The style has ${prime.length} pen points; the server takes at most ${limits.max_prime_points}. ` +
        'Write a shorter line.');
    }
    const written = [];
    for (let start = 0; start < texts.length; start += limits.max_batch) {
      const chunk = texts.slice(start, start + limits.max_batch);
      const longest = Math.max(...chunk.map((t) => [...(primeText ? primeText + ' ' + t : t)].length));
      const inputs = {
        text: chunk, bias: chunk.map(() => bias), seed: seed,
        max_steps: Math.max(1, Math.min(limits.max_steps, perCharacter * longest)),
      };
      if (prime) {
        inputs.prime_strokes = chunk.map(() => prime);
        inputs.prime_lengths = chunk.map(() => prime.length);
        inputs.prime_text = chunk.map(() => primeText);
      }
      const outputs = await predict(prime ? 'generate_primed' : 'serving_default', inputs);
      chunk.forEach((_, i) => written.push(outputs.strokes[i].slice(0, outputs.lengths[i])));
    }
    return written;
  }

  function chosenStyle() {
    const stride = state.config.point_stride || 1;
    if (state.choice === 'mine') {
      if (!state.mine) throw new PageError('Write a line in the drawing area and press "Use as my style" first.');
      return {prime: toDataRate(traceOffsets(state.mine.strokes, state.config.offset_std), stride), text: state.mine.text};
    }
    if (state.choice.startsWith('style:')) {
      const style = state.styles.find((s) => 'style:' + s.name === state.choice);
      return {prime: style.strokes, text: style.text};  // already at the data's rate
    }
    return null;
  }

  async function write() {
    stopAnimation(true);
    showMessage('');
    const button = $('write');
    try {
      if (!state.config) throw new PageError('The page has no model description yet: is its server running?');
      const lines = linesToWrite();
      const bias = parseFloat($('bias').value), seed = Math.max(0, parseInt($('seed').value, 10) || 0);
      const style = chosenStyle();
      button.disabled = true;
      showMessage(`Writing ${lines.length} line${lines.length > 1 ? 's' : ''}…`, 'info');
      let written;
      if (style) {
        written = await sampleLines(lines, bias, seed, style.prime, style.text);
      } else {
        written = await sampleLines(lines.slice(0, 1), bias, seed);
        if (lines.length > 1) {  // the page keeps the first line's style (section 5.5)
          const prime = toDataRate(written[0], state.config.point_stride || 1);
          written = written.concat(await sampleLines(lines.slice(1), bias, seed, prime, lines[0]));
        }
      }
      showMessage('');
      state.written = {lines: lines, offsets: written};
      render(written, true);
    } catch (error) {
      showMessage(error instanceof PageError ? error.message : `Something went wrong: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // ---- drawing the result -------------------------------------------------------------------------------
  function smoothPath(points) {  // as graves_tf.drawing.smooth_path
    const f = (v) => v.toFixed(2);
    if (points.length === 1) return `M${f(points[0][0])},${f(points[0][1])} l0.01,0`;
    const parts = [`M${f(points[0][0])},${f(points[0][1])}`];
    for (let i = 1; i < points.length - 1; i++) {
      const [x0, y0] = points[i], [x1, y1] = points[i + 1];
      parts.push(`Q${f(x0)},${f(y0)} ${f((x0 + x1) / 2)},${f((y0 + y1) / 2)}`);
    }
    const last = points[points.length - 1];
    parts.push(`L${f(last[0])},${f(last[1])}`);
    return parts.join(' ');
  }

  // Lines stacked down the page as graves_tf.drawing.lines_to_svg does: {width, height, strokes (page px)}.
  function layout(lines, scale = 0.5, margin = 40) {
    const extents = lines.map((offsets) => {
      const strokes = offsetsToStrokes(offsets);
      const points = strokes.flat();
      if (!points.length) points.push([0, 0]);
      const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
      return {strokes: strokes, lo: [Math.min(...xs), Math.min(...ys)], hi: [Math.max(...xs), Math.max(...ys)]};
    });
    const heights = extents.map((e) => (e.hi[1] - e.lo[1]) * scale);
    const step = Math.max(1, ...heights) * 1.15;
    let top = margin, width = 0;
    const placed = [];
    for (const e of extents) {
      for (const s of e.strokes) placed.push(s.map((p) => [(p[0] - e.lo[0]) * scale + margin, (p[1] - e.lo[1]) * scale + top]));
      width = Math.max(width, (e.hi[0] - e.lo[0]) * scale);
      top += step;
    }
    return {
      width: Math.ceil(width + 2 * margin), height: Math.ceil(top - step + Math.max(1, ...heights) + margin),
      strokes: placed, unitsWide: Math.max(0, ...extents.map((e) => e.hi[0] - e.lo[0])),
    };
  }

  function svgDocument(page, strokeWidth = 2.5) {
    const paths = page.strokes.map((s) => `  <path d="${smoothPath(s)}" fill="none" stroke="black" ` +
      `stroke-width="${strokeWidth}" stroke-linecap="round" stroke-linejoin="round"/>`);
    return `<svg xmlns="${SVG_NS}" width="${page.width}" height="${page.height}" viewBox="0 0 ${page.width} ${page.height}">\n` +
      `  <rect width="100%" height="100%" fill="white"/>\n${paths.join('\n')}\n</svg>\n`;
  }

  function render(lines, animate) {
    const svg = $('output');
    const page = layout(lines);
    svg.replaceChildren();
    svg.setAttribute('width', page.width);
    svg.setAttribute('height', page.height);
    svg.setAttribute('viewBox', `0 0 ${page.width} ${page.height}`);
    svg.dataset.lines = String(lines.length);
    svg.dataset.points = String(lines.reduce((n, l) => n + l.length, 0));
    svg.dataset.characters = String(state.written.lines.reduce((n, t) => n + [...t].length, 0));
    svg.dataset.unitsWide = page.unitsWide.toFixed(1);
    const background = document.createElementNS(SVG_NS, 'rect');
    background.setAttribute('width', '100%');
    background.setAttribute('height', '100%');
    background.setAttribute('fill', 'white');
    svg.appendChild(background);
    const paths = page.strokes.map(() => {
      const path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', 'black');
      path.setAttribute('stroke-width', '2.5');
      path.setAttribute('stroke-linecap', 'round');
      path.setAttribute('stroke-linejoin', 'round');
      svg.appendChild(path);
      return path;
    });
    $('download-svg').disabled = $('download-png').disabled = false;
    state.page = page;
    if (!animate) return finish(paths, page);
    // Stroke by stroke, point by point, in the order the pen wrote them.
    svg.dataset.state = 'writing';
    $('skip').disabled = false;
    const total = page.strokes.reduce((n, s) => n + s.length, 0);
    const started = performance.now();
    let stroke = 0;
    const frame = (now) => {
      let left = Math.min(total, Math.ceil(((now - started) / 1000) * POINTS_PER_SECOND));
      for (let i = 0; i < page.strokes.length && left > 0; i++) {
        const n = Math.min(left, page.strokes[i].length);
        if (i >= stroke) paths[i].setAttribute('d', smoothPath(page.strokes[i].slice(0, n)));
        if (n === page.strokes[i].length && i === stroke) stroke++;
        left -= n;
      }
      if (stroke >= page.strokes.length) return finish(paths, page);
      state.animation.frame = requestAnimationFrame(frame);
    };
    state.animation = {paths: paths, page: page, frame: requestAnimationFrame(frame)};
  }

  function finish(paths, page) {
    page.strokes.forEach((s, i) => paths[i].setAttribute('d', smoothPath(s)));
    $('output').dataset.state = 'done';
    $('skip').disabled = true;
    state.animation = null;
  }

  function stopAnimation(discard) {
    if (!state.animation) return;
    cancelAnimationFrame(state.animation.frame);
    if (!discard) finish(state.animation.paths, state.animation.page);
    state.animation = null;
    $('skip').disabled = true;
  }

  // ---- downloads ----------------------------------------------------------------------------------------
  function download(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  function downloadSVG() {
    if (!state.page) return;
    download(new Blob([svgDocument(state.page)], {type: 'image/svg+xml'}), 'handwriting.svg');
  }
  function tracePath(context, points) {  // the same curves as smoothPath
    context.beginPath();
    context.moveTo(points[0][0], points[0][1]);
    if (points.length === 1) context.lineTo(points[0][0] + 0.01, points[0][1]);
    for (let i = 1; i < points.length - 1; i++) {
      const [x0, y0] = points[i], [x1, y1] = points[i + 1];
      context.quadraticCurveTo(x0, y0, (x0 + x1) / 2, (y0 + y1) / 2);
    }
    if (points.length > 1) context.lineTo(points[points.length - 1][0], points[points.length - 1][1]);
    context.stroke();
  }
  function downloadPNG() {
    if (!state.page) return;
    const page = state.page, ratio = 2;
    const canvas = document.createElement('canvas');
    canvas.width = page.width * ratio;
    canvas.height = page.height * ratio;
    const context = canvas.getContext('2d');
    context.fillStyle = 'white';
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.scale(ratio, ratio);
    context.strokeStyle = 'black';
    context.lineWidth = 2.5;
    context.lineCap = context.lineJoin = 'round';
    page.strokes.forEach((s) => tracePath(context, s));
    canvas.toBlob((blob) => download(blob, 'handwriting.png'), 'image/png');
  }

  // ---- the drawing area ---------------------------------------------------------------------------------
  function padContext() {
    const canvas = $('pad');
    const rect = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(rect.width * ratio) || canvas.height !== Math.round(rect.height * ratio)) {
      canvas.width = Math.round(rect.width * ratio);
      canvas.height = Math.round(rect.height * ratio);
    }
    const context = canvas.getContext('2d');
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    return {canvas: canvas, context: context, rect: rect};
  }
  function redrawPad() {
    const {context, rect} = padContext();
    context.clearRect(0, 0, rect.width, rect.height);
    context.strokeStyle = '#c8ccd6';
    context.lineWidth = 1;
    context.beginPath();
    context.moveTo(10, rect.height * 0.7);
    context.lineTo(rect.width - 10, rect.height * 0.7);
    context.stroke();
    context.strokeStyle = 'black';
    context.lineWidth = 2;
    context.lineCap = context.lineJoin = 'round';
    for (const stroke of state.pad) if (stroke.length) tracePath(context, stroke);
  }
  function padPoint(event) {
    const rect = $('pad').getBoundingClientRect();
    return [Math.round((event.clientX - rect.left) * 100) / 100, Math.round((event.clientY - rect.top) * 100) / 100];
  }
  function addPoint(stroke, point) {
    const last = stroke[stroke.length - 1];
    if (!last || last[0] !== point[0] || last[1] !== point[1]) stroke.push(point);
  }
  function setUpPad() {
    const canvas = $('pad');
    canvas.addEventListener('pointerdown', (event) => {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      state.drawing = {id: event.pointerId, stroke: [padPoint(event)]};
      state.pad.push(state.drawing.stroke);
      redrawPad();
    });
    canvas.addEventListener('pointermove', (event) => {
      if (!state.drawing || state.drawing.id !== event.pointerId) return;
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      for (const e of (events.length ? events : [event])) addPoint(state.drawing.stroke, padPoint(e));
      redrawPad();
    });
    const end = (event) => {
      if (!state.drawing || state.drawing.id !== event.pointerId) return;
      state.drawing = null;
      padMessage(`${state.pad.length} stroke${state.pad.length > 1 ? 's' : ''}, ` +
        `${state.pad.reduce((n, s) => n + s.length, 0)} points.`);
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
    $('pad-clear').addEventListener('click', () => { state.pad = []; redrawPad(); padMessage(''); });
    $('pad-undo').addEventListener('click', () => { state.pad.pop(); redrawPad(); });
    $('use-mine').addEventListener('click', useMine);
    $('download-style').addEventListener('click', downloadStyle);
    $('load-style').addEventListener('change', loadStyle);
    window.addEventListener('resize', redrawPad);
    redrawPad();
  }
  function padStyle() {
    const strokes = state.pad.filter((s) => s.length);
    if (!strokes.length) throw new PageError('Write a line in the drawing area first.');
    const text = $('my-text').value.trim();
    if (!text) throw new PageError('Type what you wrote in "What you wrote".');
    checkCharacters(text, 'what you wrote');
    return {strokes: strokes.map((s) => s.map((p) => p.slice())), text: text};
  }
  function setMine(style, origin) {
    if (!state.config.offset_std) throw new PageError('This model does not describe its statistics: your own hand cannot be used.');
    const offsets = traceOffsets(style.strokes, state.config.offset_std);
    const points = toDataRate(offsets, state.config.point_stride || 1).length;
    if (points > state.config.limits.max_prime_points) {
      throw new PageError(`Your line has ${points} pen points; the server takes at most ` +
        `${state.config.limits.max_prime_points}. Write a shorter line.`);
    }
    state.mine = style;
    try { localStorage.setItem(STORAGE_KEY, JSON.stringify(style)); } catch (error) { /* private mode */ }
    buildStylePicker();
    choose('mine');
    padMessage(`Your hand (${origin}) is the style: "${style.text}".`);
  }
  function useMine() {
    try { setMine(padStyle(), 'drawn here'); } catch (error) { padMessage(error.message, true); }
  }
  function downloadStyle() {
    try {
      const style = padStyle();  // the JSON that `graves_tf.write --prime_strokes` reads, with its text
      download(new Blob([JSON.stringify({strokes: style.strokes, text: style.text})], {type: 'application/json'}),
        'my_style.json');
    } catch (error) { padMessage(error.message, true); }
  }
  function loadStyle(event) {
    const file = event.target.files[0];
    if (!file) return;
    file.text().then((content) => {
      const data = JSON.parse(content);
      const strokes = Array.isArray(data) ? data : data.strokes;
      if (!Array.isArray(strokes) || !strokes.every((s) => Array.isArray(s) && s.every((p) => Array.isArray(p) &&
          p.length === 2 && p.every(Number.isFinite)))) {
        throw new PageError('A style file is {"strokes": [[[x, y], ...], ...], "text": "..."}.');
      }
      const text = (data.text || $('my-text').value || '').trim();
      if (!text) throw new PageError('The file does not say what it writes: type it in "What you wrote" first.');
      checkCharacters(text, 'the style file');
      state.pad = strokes.map((s) => s.map((p) => p.slice()));
      $('my-text').value = text;
      redrawPad();
      setMine({strokes: strokes, text: text}, file.name);
    }).catch((error) => padMessage(error instanceof PageError ? error.message : `${file.name}: ${error.message}`, true))
      .finally(() => { event.target.value = ''; });
  }

  // ---- the style picker ---------------------------------------------------------------------------------
  function thumbnail(offsets) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    const strokes = offsetsToStrokes(offsets);
    const points = strokes.flat();
    if (!points.length) return svg;
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const lo = [Math.min(...xs), Math.min(...ys)], span = [Math.max(...xs) - lo[0], Math.max(...ys) - lo[1]];
    const scale = Math.min(180 / Math.max(span[0], 1), 36 / Math.max(span[1], 1));
    svg.setAttribute('viewBox', '0 0 184 40');
    for (const s of strokes) {
      const path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('d', smoothPath(s.map((p) => [(p[0] - lo[0]) * scale + 2, (p[1] - lo[1]) * scale + 2])));
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', 'black');
      path.setAttribute('stroke-width', '1');
      svg.appendChild(path);
    }
    return svg;
  }
  function styleButton(value, name, what, offsets) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'style-choice';
    button.setAttribute('role', 'radio');
    button.dataset.style = value;
    if (offsets) button.appendChild(thumbnail(offsets));
    const title = document.createElement('span');
    title.className = 'name';
    title.textContent = name;
    const note = document.createElement('span');
    note.className = 'what';
    note.textContent = what;
    button.append(title, note);
    button.addEventListener('click', () => choose(value));
    return button;
  }
  function buildStylePicker() {
    const list = $('style-list');
    list.replaceChildren(styleButton('model', "The model's own", 'a hand of its choosing; a page keeps the first line\'s'));
    for (const s of state.styles) list.appendChild(styleButton('style:' + s.name, s.name, `${s.description}: "${s.text}"`, s.strokes));
    if (state.mine && state.config.offset_std) {
      const offsets = traceOffsets(state.mine.strokes, state.config.offset_std);
      list.appendChild(styleButton('mine', 'My handwriting', `"${state.mine.text}"`, offsets));
    }
    choose(state.choice === 'mine' && !state.mine ? 'model' : state.choice);
  }
  function choose(value) {
    state.choice = value;
    for (const b of $('style-list').children) b.setAttribute('aria-checked', String(b.dataset.style === value));
  }

  // The server's defaults (python -m graves_tf.write's, chosen by measurement), unless the address names others
  // (?bias=, ?width=, ?style=NAME or ?style=model).
  function applyDefaults(defaults) {
    const bias = params.has('bias') ? parseFloat(params.get('bias')) : defaults.bias;
    if (Number.isFinite(bias)) {
      $('bias').value = String(bias);
      $('bias-value').textContent = parseFloat($('bias').value).toFixed(2);
    }
    const width = params.has('width') ? parseInt(params.get('width'), 10) : defaults.width;
    if (Number.isFinite(width)) $('width').value = String(width);
    const style = params.has('style') ? params.get('style') : defaults.style;
    if (style === 'model') state.choice = 'model';
    else if (style && state.styles.some((s) => s.name === style)) state.choice = 'style:' + style;
  }

  // ---- start --------------------------------------------------------------------------------------------
  async function start() {
    $('server').value = params.get('server') || location.origin;
    if (params.get('text')) $('text').value = params.get('text');
    $('bias').addEventListener('input', () => { $('bias-value').textContent = parseFloat($('bias').value).toFixed(2); });
    $('write').addEventListener('click', write);
    $('skip').addEventListener('click', () => stopAnimation(false));
    $('download-svg').addEventListener('click', downloadSVG);
    $('download-png').addEventListener('click', downloadPNG);
    $('check-server').addEventListener('click', checkServer);
    $('server').addEventListener('change', checkServer);
    setUpPad();
    try {
      const [config, styles] = await Promise.all([
        fetch('page/config.json').then((r) => { if (!r.ok) throw new Error(r.statusText); return r.json(); }),
        fetch('page/styles.json').then((r) => (r.ok ? r.json() : {styles: []})),
      ]);
      state.config = config;
      state.styles = styles.styles || [];
      try {
        const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
        if (saved && Array.isArray(saved.strokes) && saved.text) state.mine = saved;
      } catch (error) { /* nothing saved */ }
      applyDefaults(config.defaults || {});
      buildStylePicker();
      if (!config.offset_std) padMessage('This model does not describe its statistics: your own hand cannot be used.', true);
      $('width').max = String(config.limits.max_text_length);
    } catch (error) {
      showMessage(`The page could not load its model description (${error.message}): is its server running?`);
    }
    checkServer();
  }

  start();
})();
