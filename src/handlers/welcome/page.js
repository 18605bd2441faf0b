'use strict';
// The comparison (docs/landing.md): every lane's URL is fetched at once, each body is read
// with a stream reader, and every piece is drawn the moment the reader hands it over, timed
// with the page's own clock (performance.now(), counted from when the requests were made).
(() => {
  const lanes = Array.from(document.querySelectorAll('.lane[data-url]'), (el) => ({
    el,
    mode: el.dataset.mode,
    url: el.dataset.url,
    track: el.querySelector('.track'),
    grid: el.querySelector('.grid'),
    wait: el.querySelector('.wait'),
    recv: el.querySelector('.recv'),
    now: el.querySelector('.now'),
    text: el.querySelector('.text'),
    stat: (name) => el.querySelector(`[data-stat="${name}"]`),
    state: null,
  }));
  const axis = document.querySelector('.axis');
  const button = document.getElementById('again');
  const summary = document.getElementById('summary');
  const MAX_LINES = 40;
  // How long the Resource Timing entry may take to show up once a body has been read.
  const TIMING_WAIT_MS = 1500;

  let scale = 1000; // the axis spans 0 .. scale ms; it grows while a run needs more
  let runs = 0;
  let running = false;

  const fmt = (ms) => {
    if (ms < 10) return `${ms.toFixed(1)} ms`;
    if (ms < 10000) return `${Math.round(ms)} ms`;
    return `${(ms / 1000).toFixed(1)} s`;
  };
  const pct = (ms) => `${Math.min(100, Math.max(0, ms) / scale * 100)}%`;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The axis: a round span, and a step that leaves room for each label.
  const niceScale = (ms) => {
    for (const s of [500, 1000, 1500, 2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000]) {
      if (ms <= s) return s;
    }
    return Math.ceil(ms / 30000) * 30000;
  };
  const niceStep = (width) => {
    const most = Math.max(2, Math.floor(width / 72));
    for (const s of [50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000]) {
      if (scale % s === 0 && scale / s <= most) return s;
    }
    return scale;
  };
  // Numbers along the axis, the unit once at its end.
  const label = (ms, last) => {
    const value = scale >= 2000 ? `${ms / 1000}` : `${ms}`;
    if (!last) return value;
    return scale >= 2000 ? `${value} s` : `${value} ms`;
  };

  function drawAxis() {
    const step = niceStep(axis.clientWidth || 300);
    axis.replaceChildren();
    for (const lane of lanes) lane.grid.replaceChildren();
    for (let ms = 0; ms <= scale + 0.5; ms += step) {
      const span = document.createElement('span');
      const last = ms > 0 && ms + step > scale + 0.5;
      span.textContent = label(ms, last);
      span.style.left = pct(ms);
      if (last) span.className = 'last';
      axis.appendChild(span);
      if (ms === 0) continue;
      for (const lane of lanes) {
        const line = document.createElement('div');
        line.className = 'gridline';
        line.style.left = pct(ms);
        lane.grid.appendChild(line);
      }
    }
  }

  // Everything placed on the axis, again: after the axis changed its span or its width.
  function relayout(now) {
    drawAxis();
    for (const lane of lanes) {
      if (!lane.state) continue;
      for (const a of lane.state.arrivals) a.mark.style.left = pct(a.t);
      draw(lane, now);
    }
  }

  function grow(ms, now) {
    if (ms <= scale * 0.96) return;
    scale = niceScale(ms * 1.25);
    relayout(now);
  }

  // The bars: waiting from the request to the first byte, receiving from there to the end.
  function draw(lane, now) {
    const s = lane.state;
    if (!s) return;
    const end = s.end ?? now;
    lane.wait.style.width = pct(s.first ?? end);
    if (s.first === null) {
      lane.recv.style.width = '0';
    } else {
      lane.recv.style.left = pct(s.first);
      lane.recv.style.width = pct(end - s.first);
    }
    lane.now.style.left = pct(now);
  }

  function setState(lane, state) {
    lane.el.dataset.state = state;
  }

  function reset(lane) {
    lane.state = { arrivals: [], first: null, end: null, bytes: 0, last: 0 };
    for (const mark of lane.track.querySelectorAll('.mark')) mark.remove();
    lane.text.replaceChildren();
    for (const name of ['framing', 'first', 'total', 'conn']) lane.stat(name).textContent = '…';
    setState(lane, 'waiting');
    draw(lane, 0);
  }

  function arrive(lane, t, bytes) {
    const s = lane.state;
    if (s.first === null) {
      s.first = t;
      lane.stat('first').textContent = fmt(t);
      setState(lane, 'receiving');
    }
    const mark = document.createElement('div');
    mark.className = 'mark';
    mark.dataset.ms = t.toFixed(1);
    mark.dataset.bytes = String(bytes);
    mark.title = `${fmt(t)}: ${bytes} bytes`;
    mark.style.left = pct(t);
    lane.track.appendChild(mark);
    s.arrivals.push({ t, bytes, mark });
    s.bytes += bytes;
    s.last = t;
    grow(t, t);
    draw(lane, t);
  }

  function addLine(lane, text, t) {
    const line = document.createElement('span');
    line.className = 'line';
    const at = document.createElement('span');
    at.className = 'at';
    at.textContent = fmt(t);
    line.append(at, text.length > 120 ? `${text.slice(0, 120)}…` : text);
    lane.text.appendChild(line);
    while (lane.text.childElementCount > MAX_LINES) lane.text.firstElementChild.remove();
    lane.text.scrollTop = lane.text.scrollHeight;
  }

  // What framed the body: Content-Length, or chunked (which Chromium shows as a header too).
  function framingOf(res) {
    const length = res.headers.get('content-length');
    const coding = res.headers.get('transfer-encoding');
    let framing;
    if (length !== null) framing = `length ${length}`;
    else if (coding !== null && /chunked/i.test(coding)) framing = 'chunked';
    else framing = coding ?? 'no length';
    return res.status === 200 ? framing : `${res.status}, ${framing}`;
  }

  // Resource Timing (W3C, §4.3 of Level 2): a request that had to connect has a connect
  // phase; on a connection kept open from before, connectStart equals connectEnd.
  const waiting = new Map(); // absolute URL → the resolve of its entry's promise
  if ('PerformanceObserver' in window) {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const resolve = waiting.get(entry.name);
        if (resolve) {
          waiting.delete(entry.name);
          resolve(entry);
        }
      }
    }).observe({ type: 'resource' });
  }
  const connectionOf = (entry) => {
    if (!entry) return 'unknown';
    return entry.connectEnd > entry.connectStart ? 'new' : 'reused';
  };

  async function fetchLane(lane, t0, run) {
    const url = new URL(lane.url, location.href);
    // A URL of its own each time, so nothing can come from a cache.
    url.searchParams.set('run', `${run}-${Date.now()}`);
    const href = url.href;
    const timing = new Promise((resolve) => waiting.set(href, resolve));
    const at = () => performance.now() - t0;
    try {
      const res = await fetch(href, { cache: 'no-store' });
      lane.stat('framing').textContent = framingOf(res);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let partial = '';
      for (;;) {
        const { done, value } = await reader.read();
        const t = at();
        if (done) break;
        arrive(lane, t, value.length);
        partial += decoder.decode(value, { stream: true });
        const lines = partial.split('\n');
        partial = lines.pop();
        for (const line of lines) addLine(lane, line, t);
      }
      partial += decoder.decode();
      if (partial) addLine(lane, partial, lane.state.last);
      lane.state.end = at();
      lane.stat('total').textContent = fmt(lane.state.end);
      setState(lane, 'done');
    } catch (err) {
      lane.state.end = at();
      lane.state.error = String(err);
      lane.stat('framing').textContent = 'failed';
      lane.stat('total').textContent = fmt(lane.state.end);
      setState(lane, 'failed');
    }
    const entry = await Promise.race([timing, sleep(TIMING_WAIT_MS).then(() => null)]);
    waiting.delete(href);
    lane.stat('conn').textContent = connectionOf(entry ?? performance.getEntriesByName(href).pop());
  }

  function summarize() {
    const by = {};
    for (const lane of lanes) by[lane.mode] = lane.state;
    const parts = [];
    const failed = lanes.filter((lane) => lane.state.error);
    if (failed.length) {
      parts.push(`Failed: ${failed.map((l) => `${l.url} (${l.state.error})`).join(', ')}.`);
    }
    const stream = by.stream;
    if (stream && stream.first !== null) {
      parts.push(`Streamed: the first line after ${fmt(stream.first)}, the last at ${fmt(stream.last)}.`);
    }
    const buffer = by.buffer;
    if (buffer && buffer.first !== null) {
      const how = buffer.arrivals.length === 1
        ? `then all ${buffer.bytes} bytes at once`
        : `then ${buffer.bytes} bytes in ${buffer.arrivals.length} pieces`;
      parts.push(`Buffered: nothing for ${fmt(buffer.first)}, ${how}.`);
    }
    const auto = by.auto;
    if (auto && auto.first !== null) {
      const streamed = auto.arrivals.length > 1;
      parts.push(streamed
        ? `Auto: held for ${fmt(auto.first)}, then streamed once the script paused.`
        : `Auto: sent whole after ${fmt(auto.first)}.`);
    }
    return parts.join(' ');
  }

  async function run() {
    if (running || lanes.length === 0) return;
    running = true;
    runs += 1;
    const id = runs;
    button.disabled = true;
    document.body.dataset.state = 'running';
    summary.textContent = 'Fetching…';
    performance.clearResourceTimings();
    for (const lane of lanes) reset(lane);
    const t0 = performance.now();
    const frame = () => {
      if (!running) return;
      const now = performance.now() - t0;
      grow(now, now);
      for (const lane of lanes) draw(lane, now);
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    await Promise.all(lanes.map((lane) => fetchLane(lane, t0, id)));
    running = false;
    // Fit the axis to this run, so the picture fills the width.
    scale = niceScale(Math.max(...lanes.map((lane) => lane.state.end)) * 1.05);
    relayout(0);
    for (const lane of lanes) draw(lane, lane.state.end);
    summary.textContent = summarize();
    button.disabled = false;
    document.body.dataset.runs = String(id);
    document.body.dataset.state = 'done';
  }

  const probe = document.getElementById('probe');
  const urlOf = (mode) => lanes.find((lane) => lane.mode === mode)?.url;
  if (probe && urlOf('buffer') && urlOf('stream')) {
    const origin = location.origin;
    probe.textContent = `cgigate probe ${origin}${urlOf('buffer')} ${origin}${urlOf('stream')} --timeline`;
  }

  button.addEventListener('click', run);
  window.addEventListener('resize', () => relayout(0));
  drawAxis();
  if (lanes.length === 0) {
    summary.textContent = 'No lanes to draw: see above for what the comparison needs.';
    document.body.dataset.state = 'done';
  } else {
    run();
  }
})();
