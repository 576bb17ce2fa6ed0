/* emg-pipeline live dashboard.
 *
 * One WebSocket: a "hello" (the stream's layout, status and history), then binary frames
 * (b"EMG1", uint32 header length, JSON header, float32 columns one series after the other)
 * and text messages ("events" a slow page missed the frames of, "end"). Columns are kept for
 * the longest window; the traces are redrawn at the display's rate, scrolling smoothly between
 * frames. window.emgDashboard exposes the state and counters (tests and benchmarks read them).
 */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const SERIES = 5;                 // per channel: signal min, signal max, envelope, on, off
  const MAX_WINDOW_S = 30;
  const MAX_ROWS = 300;             // rows kept in the episode list and the link log
  const MAGIC = 0x454d4731;         // "EMG1"
  const COLORS = {
    signal: '#9aa7b8', envelope: '#0072b2',
    on: '#009e73', off: '#e69f00',
  };

  // the token (when the server asks for one) arrives once in the address, then lives in a cookie
  const query = new URLSearchParams(location.search);
  const token = query.get('token') || '';
  if (token) history.replaceState(null, '', location.pathname);
  const authHeaders = token ? { 'X-Emg-Token': token } : {};

  const S = {
    info: null, nCh: 0, colS: 0.01, windowS: 10, paused: false, ended: false, sound: false,
    xs: [], ys: [], data: [], lastCol: -1, charts: [], cards: [], status: null,
    recvT: 0, recvAt: 0, rate: 1, step: 0.02, viewT: 0, drawnEnd: -1, dirty: false,
    xmin: 0, xmax: 10, title: 'emg-pipeline', ws: null, retry: 0, pendingMark: null,
    diaryVersion: -1, view: 'live', tab: 'episodes', nEpisodes: 0, nLink: 0,
  };
  const stats = {
    framesReceived: 0, framesDrawn: 0, bytes: 0, seqGaps: 0, lastSeq: 0, drawsPerSecond: 0,
    alerts: [], alertLatencyMs: [], marks: [], events: 0, connects: 0, startedAt: Date.now(),
    drawMs: 0, drawMsMax: 0,
  };
  const drawTimes = [];
  window.emgDashboard = { state: S, stats };

  // ------------------------------------------------------------------------ formatting
  function clock(t) {
    if (t == null || !isFinite(t)) return '–';
    const neg = t < 0; t = Math.abs(t);
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
    const ss = Number.isInteger(Math.round(s * 10) / 10) ? Math.floor(s).toString().padStart(2, '0')
      : s.toFixed(1).padStart(4, '0');
    return (neg ? '-' : '') + (h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`);
  }
  function clockTenth(t) {
    if (t == null || !isFinite(t)) return '–';
    const m = Math.floor(t / 60), s = t - 60 * m;
    const h = Math.floor(m / 60);
    const ss = s.toFixed(1).padStart(4, '0');
    return h ? `${h}:${String(m % 60).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }
  // wall-clock time of stream time t, in the stream's own zone (the offset of its start time)
  function wall(t) {
    if (!S.info || !S.info.start_time || t == null || !isFinite(t)) return '';
    const start = S.info.start_time;
    const m = /([+-])(\d{2}):(\d{2})$/.exec(start);
    const offsetMin = m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
    const d = new Date(Date.parse(start) + t * 1000 + offsetMin * 60000);
    const two = (v) => String(v).padStart(2, '0');
    return `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
  }
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function shortDay(day) {
    const m = /^\d{4}-(\d{2})-(\d{2})$/.exec(day || '');
    return m ? `${MONTHS[Number(m[1]) - 1]} ${Number(m[2])}` : day;
  }
  function num(v, digits = 3) {
    if (v == null || !isFinite(v)) return '–';
    const a = Math.abs(v);
    return a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toPrecision(digits);
  }
  function secs(v) {
    if (v == null || !isFinite(v)) return '–';
    return v < 60 ? `${v.toFixed(1)} s` : clock(v);
  }
  function unit() { return S.info && S.info.unit === 'uV' ? 'µV' : 'counts'; }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function where(channel, site) {
    if (!channel) return 'any';
    return site && site !== 'unspecified' && site !== channel ? `${site} (${channel})` : channel;
  }

  // ---------------------------------------------------------------------------- layout
  function setup(hello) {
    const info = hello.info;
    S.info = info; S.nCh = info.channels.length; S.colS = info.col_s; S.ended = false;
    S.xs = []; S.ys = []; S.data = []; S.lastCol = -1; S.viewT = 0; S.drawnEnd = -1;
    S.title = `emg-pipeline · ${info.title || 'stream'}`;
    $('title').textContent = info.title || '';
    document.title = S.title;
    for (let c = 0; c < S.nCh; c++) {
      const ys = [];
      for (let s = 0; s < SERIES; s++) ys.push([]);
      S.ys.push(ys);
      S.data.push([S.xs, ...ys]);
    }
    const box = $('channels');
    for (const ch of S.charts) ch.destroy();
    box.replaceChildren();
    S.charts = []; S.cards = [];
    const select = $('mark-channel');
    select.replaceChildren(new Option('any muscle', ''));
    info.channels.forEach((c, k) => {
      const row = el('div', 'channel');
      const card = el('div', 'card');
      card.append(el('div', 'name', c.name), el('div', 'site', c.site || 'unspecified'));
      const state = el('span', 'state state-rest', 'rest');
      const nosig = el('span', 'nosig', 'no signal');
      nosig.hidden = true;
      const line = el('div');
      line.append(state, nosig);
      const dl = el('dl');
      const cells = {};
      for (const [key, label] of [['floor', 'floor'], ['on', 'on'], ['twitches', 'twitches'],
                                  ['spasms', 'spasms'], ['nosignal_s', 'no signal']]) {
        const dd = el('dd', null, '–');
        dl.append(el('dt', null, label), dd);
        cells[key] = dd;
      }
      card.append(line, dl);
      const plot = el('div', 'plot');
      row.append(card, plot);
      box.append(row);
      S.cards.push({ row, state, nosig, cells });
      select.append(new Option(where(c.name, c.site), c.name));
      S.charts.push(makeChart(k, plot));
    });
    const legend = el('div', 'legend');
    const sig = info.signal === 'raw' ? 'signal as received' : 'signal as conditioned';
    for (const [color, text] of [[COLORS.signal, `${sig} (min/max)`], [COLORS.envelope, 'envelope'],
                                 [COLORS.on, 'on threshold'], [COLORS.off, 'off threshold']]) {
      const span = el('span');
      const swatch = el('i');
      swatch.style.background = color;
      span.append(swatch, document.createTextNode(text));
      legend.append(span);
    }
    box.append(legend);
    $('episodes').replaceChildren();
    $('linklog').replaceChildren();
    S.nEpisodes = 0; S.nLink = 0;
    for (const ev of hello.episodes || []) addEpisodeRow(ev, false);
    for (const ev of hello.link || []) addLinkRow(ev);
    countRows();
    if (hello.last_alert) showLastAlert(hello.last_alert);
    if (hello.status) applyStatus(hello.status);
    if (hello.ended) onEnd({ summary: hello.ended });
    resize();
  }

  function chartHeight() {
    const free = window.innerHeight - 190;
    return Math.max(80, Math.min(210, Math.floor(free / Math.max(1, S.nCh)) - 12));
  }

  // the signal's min/max columns as one vertical stroke per pixel column (one path): far
  // cheaper than a filled band, and every spike stays visible whatever the zoom
  function minMaxBars(u, si, i0, i1) {
    const path = new Path2D();
    const xs = u.data[0], lo = u.data[1], hi = u.data[2];
    let px = -1, yLo = 0, yHi = 0;
    for (let i = i0; i <= i1; i++) {
      const a = lo[i], b = hi[i];
      if (a == null || b == null) continue;
      const x = Math.round(u.valToPos(xs[i], 'x', true)) + 0.5;
      const y0 = u.valToPos(a, 'y', true), y1 = u.valToPos(b, 'y', true);
      if (x === px) { if (y0 > yLo) yLo = y0; if (y1 < yHi) yHi = y1; continue; }
      if (px >= 0) { path.moveTo(px, yLo); path.lineTo(px, Math.min(yHi, yLo - 1)); }
      px = x; yLo = y0; yHi = y1;
    }
    if (px >= 0) { path.moveTo(px, yLo); path.lineTo(px, Math.min(yHi, yLo - 1)); }
    return { stroke: path };
  }
  const noPath = () => null;

  // a threshold is constant for long stretches: one segment per run of equal values
  function steps(u, si, i0, i1) {
    const path = new Path2D();
    const xs = u.data[0], ys = u.data[si];
    let start = -1, value = null;
    const flush = (end) => {
      if (start < 0) return;
      const y = Math.round(u.valToPos(value, 'y', true)) + 0.5;
      path.moveTo(u.valToPos(xs[start], 'x', true), y);
      path.lineTo(u.valToPos(xs[end], 'x', true), y);
    };
    for (let i = i0; i <= i1; i++) {
      const v = ys[i];
      if (v === value && v != null) continue;
      flush(i);
      start = v == null ? -1 : i; value = v;
    }
    flush(i1);
    return { stroke: path };
  }

  function makeChart(k, host) {
    const line = (stroke, width, dash) => ({ stroke, width, dash, points: { show: false } });
    const last = k === S.nCh - 1;
    const opts = {
      width: Math.max(200, host.clientWidth - 4), height: chartHeight(),
      legend: { show: false }, cursor: { show: false }, select: { show: false },
      scales: {
        x: { time: false, range: () => [S.xmin, S.xmax] },
        y: { range: (u, lo, hi) => yRange(k, lo, hi) },
      },
      axes: [
        // time labels on the last channel only: text is the costliest part of a redraw
        last ? { stroke: '#556', size: 26, font: '11px system-ui', ticks: { size: 4 },
                 grid: { stroke: '#edf0f3', width: 1 }, values: (u, v) => v.map(clock) }
          : { size: 4, ticks: { show: false }, grid: { stroke: '#edf0f3', width: 1 },
              values: (u, v) => v.map(() => '') },
        { stroke: '#556', size: 58, font: '11px system-ui', ticks: { size: 4 },
          grid: { stroke: '#edf0f3', width: 1 }, values: (u, v) => v.map((x) => num(x, 2)) },
      ],
      series: [
        {},
        { stroke: COLORS.signal, width: 1, paths: minMaxBars, points: { show: false } },
        { stroke: COLORS.signal, width: 0, paths: noPath, points: { show: false } },  // drawn by 1
        line(COLORS.envelope, 2),
        { stroke: COLORS.on, width: 1.5, paths: steps, points: { show: false } },
        { stroke: COLORS.off, width: 1, paths: steps, points: { show: false } },
      ],
    };
    return new uPlot(opts, S.data[k], host);
  }

  function yRange(k, lo, hi) {
    // always show the on threshold, so rest and contraction read the same on every channel
    const st = S.status && S.status.ch[k];
    const on = st && st.on != null ? st.on : null;
    if (lo == null || hi == null || !isFinite(lo) || !isFinite(hi)) {
      return on ? [-on * 1.6, on * 1.6] : [-1, 1];
    }
    if (on) { hi = Math.max(hi, on * 1.6); lo = Math.min(lo, -on * 1.6); }
    const pad = (hi - lo) * 0.05 || 1;
    return [lo - pad, hi + pad];
  }

  function resize() {
    const h = chartHeight();
    S.charts.forEach((u) => {
      const w = Math.max(200, u.root.parentNode.clientWidth - 4);
      u.setSize({ width: w, height: h });
    });
    S.dirty = true;
  }
  window.addEventListener('resize', () => { clearTimeout(S.resizeTimer); S.resizeTimer = setTimeout(resize, 100); });

  // ---------------------------------------------------------------------------- data
  function appendColumns(col0, n, data) {
    if (!n || !S.info) return;
    const nCh = S.nCh, xs = S.xs;
    let from = 0;
    if (S.lastCol >= 0 && col0 <= S.lastCol) from = S.lastCol + 1 - col0;  // already held
    if (from >= n) return;
    if (S.lastCol >= 0 && col0 > S.lastCol + 1) {
      // columns that never came (a slow page's dropped frames): one empty column breaks the lines
      xs.push((S.lastCol + 1) * S.colS);
      for (let c = 0; c < nCh; c++) for (let s = 0; s < SERIES; s++) S.ys[c][s].push(null);
    }
    for (let i = from; i < n; i++) xs.push((col0 + i) * S.colS);
    for (let c = 0; c < nCh; c++) {
      for (let s = 0; s < SERIES; s++) {
        const arr = S.ys[c][s], base = (c * SERIES + s) * n;
        for (let i = from; i < n; i++) {
          const v = data[base + i];
          arr.push(v === v ? v : null);   // NaN: no sample there
        }
      }
    }
    S.lastCol = col0 + n - 1;
    const keep = Math.ceil((MAX_WINDOW_S + 2) / S.colS);
    if (xs.length > keep + 400) {
      const cut = xs.length - keep;
      xs.splice(0, cut);
      for (let c = 0; c < nCh; c++) for (let s = 0; s < SERIES; s++) S.ys[c][s].splice(0, cut);
    }
    S.dirty = true;
  }

  function onFrame(buf) {
    if (buf.byteLength < 8) return;
    const dv = new DataView(buf);
    if (dv.getUint32(0, false) !== MAGIC) return;
    const hlen = dv.getUint32(4, true);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, hlen)));
    const n = header.n | 0;
    const data = new Float32Array(buf, 8 + hlen, header.series * n);
    const now = performance.now();
    stats.bytes += buf.byteLength;
    if (header.emit) stats.recvLag = 0.9 * (stats.recvLag || 0) + 0.1 * (Date.now() - header.emit * 1000);
    if (header.backfill) {
      stats.lastSeq = header.seq;
    } else {
      stats.framesReceived++;
      if (stats.lastSeq && header.seq > stats.lastSeq + 1) stats.seqGaps += header.seq - stats.lastSeq - 1;
      stats.lastSeq = header.seq;
    }
    const before = S.lastCol;
    appendColumns(header.col0, n, data);
    if (S.lastCol > before) {
      const end = (S.lastCol + 1) * S.colS;
      if (S.recvAt && !header.backfill) {
        const dt = (now - S.recvAt) / 1000, dT = end - S.recvT;
        if (dt > 0.002 && dT > 0) {
          S.rate = Math.min(2000, Math.max(0.05, 0.85 * S.rate + 0.15 * (dT / dt)));
          S.step = 0.85 * S.step + 0.15 * dT;
        }
      }
      S.recvT = end; S.recvAt = now;
      if (header.backfill || S.viewT === 0) S.viewT = Math.max(0, end - S.step);
    }
    if (header.status) {
      S.status = header.status;
      if (header.backfill || now - (S.statusAt || 0) > 100) applyStatus(header.status);
      else S.statusDirty = true;
    }
    for (const ev of header.events || []) onEvent(ev);
  }

  // -------------------------------------------------------------------------- drawing
  function viewEnd(now) {
    if (S.lastCol < 0) return 0;
    const dataEnd = (S.lastCol + 1) * S.colS;
    if (S.ended) return dataEnd;
    // follow the stream at its own pace, one frame behind, so the traces reach the right edge
    const est = S.recvT - 1.5 * S.step + ((now - S.recvAt) / 1000) * S.rate;
    S.viewT = Math.min(dataEnd, Math.max(S.viewT, est));
    return S.viewT;
  }

  function draw(now) {
    requestAnimationFrame(draw);
    if (S.statusDirty && now - (S.statusAt || 0) > 100) applyStatus(S.status);
    if (!S.info || S.paused) return;
    const end = viewEnd(now);
    if (end === S.drawnEnd && !S.dirty) return;
    S.xmax = Math.max(end, S.windowS * 0.02);
    S.xmin = S.xmax - S.windowS;
    const t0 = performance.now();
    for (let k = 0; k < S.charts.length; k++) S.charts[k].setData(S.data[k]);
    // uPlot draws in a microtask queued by setData: this one runs after it
    queueMicrotask(() => {
      const spent = performance.now() - t0;
      stats.drawMs = stats.framesDrawn > 1 ? 0.95 * stats.drawMs + 0.05 * spent : spent;
      stats.drawMsMax = Math.max(stats.drawMsMax, spent);
    });
    S.drawnEnd = end; S.dirty = false;
    stats.framesDrawn++;
    drawTimes.push(now);
    while (drawTimes.length && drawTimes[0] < now - 1000) drawTimes.shift();
    stats.drawsPerSecond = drawTimes.length;
  }
  requestAnimationFrame(draw);

  // --------------------------------------------------------------------------- status
  function applyStatus(st) {
    S.status = st;
    S.statusAt = performance.now();
    S.statusDirty = false;
    $('clock').textContent = clock(Math.floor(st.t || 0));
    $('wall').textContent = wall(st.t);
    const unitText = unit();
    st.ch.forEach((c, k) => {
      const card = S.cards[k];
      if (!card) return;
      let text = 'rest', cls = 'state state-rest';
      if (c.state === 'active') { text = `active ${secs(st.t - c.since)}`; cls = 'state state-active'; }
      if (c.state === 'spasm') { text = `SPASM ${secs(st.t - c.since)}`; cls = 'state state-spasm'; }
      if (card.state.textContent !== text) card.state.textContent = text;
      if (card.state.className !== cls) card.state.className = cls;
      card.row.classList.toggle('spasm', c.state === 'spasm');
      card.nosig.hidden = !c.nosignal;
      card.cells.floor.textContent = `${num(c.floor)} ${unitText}`;
      card.cells.on.textContent = `${num(c.on)} ${unitText}`;
      card.cells.twitches.textContent = c.twitches;
      card.cells.spasms.textContent = c.spasms;
      card.cells.nosignal_s.textContent = secs(c.nosignal_s);
    });
    const link = st.link;
    setCount('lost', link.lost_samples);
    setCount('loss-events', link.loss_events);
    setCount('reconnects', link.reconnects);
    setCount('malformed', link.malformed);
    const flat = st.ch.map((c, k) => (c.nosignal ? S.info.channels[k].name : null)).filter(Boolean);
    const flatTotal = st.ch.reduce((a, c) => a + (c.nosignal_s || 0), 0);
    const ns = $('nosignal');
    ns.textContent = flat.length ? `now on ${flat.join(', ')}` : flatTotal > 0 ? `${secs(flatTotal)} in all` : 'none';
    ns.classList.toggle('bad', flat.length > 0);
    $('alerts').textContent = st.alerts;
    $('diag').textContent = `viewers ${st.viewers} · frames ${stats.framesReceived}` +
      (stats.seqGaps ? ` · ${stats.seqGaps} skipped (slow link)` : '') +
      ` · ${stats.drawsPerSecond} draws/s`;
    updateAlert();
  }

  function setCount(id, value) {
    const b = $(id);
    b.textContent = value;
    b.classList.toggle('bad', value > 0);
  }

  function updateAlert() {
    const st = S.status;
    const banner = $('alert');
    if (!st || !S.info) return;
    const spasms = [];
    st.ch.forEach((c, k) => { if (c.state === 'spasm') spasms.push([k, c]); });
    if (!spasms.length) {
      if (!banner.hidden) banner.hidden = true;
      if (document.title !== S.title) document.title = S.title;
      return;
    }
    const parts = spasms.map(([k, c]) => {
      const ch = S.info.channels[k];
      return `${where(ch.name, ch.site)} ${secs(st.t - c.since)}`;
    });
    const text = `PROLONGED SPASM · ${parts.join(' · ')}`;
    if (banner.textContent !== text) banner.textContent = text;
    banner.hidden = false;
    const title = `⚠ SPASM · ${S.title}`;
    if (document.title !== title) document.title = title;
  }

  function showLastAlert(ev) {
    const w = wall(ev.time_s);
    $('last-alert').textContent = `last alert ${clockTenth(ev.time_s)}${w ? ` (${w})` : ''} · ${where(ev.channel, ev.site)}`;
  }

  // --------------------------------------------------------------------------- events
  function onEvent(ev) {
    stats.events++;
    switch (ev.kind) {
      case 'sustained': onAlert(ev); break;
      // an end without an episode was not muscle (a knock's or motion's ringing)
      case 'end': if (ev.episode) addEpisodeRow(ev, true); else addLinkRow(ev, true); break;
      case 'mark': addEpisodeRow(ev, true); onMarkRecorded(ev); break;
      case 'loss': case 'reconnect': case 'malformed': case 'nosignal': case 'signal':
        addLinkRow(ev, true); break;
      default: break;
    }
    countRows();
  }

  function onAlert(ev) {
    // shown at once, before the next status: the banner, the title, the sound
    if (S.status) {
      const k = S.info.channels.findIndex((c) => c.name === ev.channel);
      if (k >= 0) { S.status.ch[k].state = 'spasm'; S.status.ch[k].since = ev.onset_s; }
      updateAlert();
    }
    showLastAlert(ev);
    if (S.sound) beep();
    const entry = { channel: ev.channel, time_s: ev.time_s, emit: ev.emit, received: Date.now() };
    stats.alerts.push(entry);
    // shown = painted: measured after the next frame has been drawn
    requestAnimationFrame(() => setTimeout(() => {
      entry.shownMs = Date.now() - ev.emit * 1000;
      stats.alertLatencyMs.push(entry.shownMs);
    }, 0));
  }

  function addEpisodeRow(ev, fresh) {
    const tr = el('tr', fresh ? 'new' : null);
    const time = el('td', null, clockTenth(ev.kind === 'mark' ? ev.time_s : ev.episode.onset_s));
    const w = wall(ev.kind === 'mark' ? ev.time_s : ev.episode.onset_s);
    if (w) time.title = w;
    if (ev.kind === 'mark') {
      const what = el('td');
      what.append(el('span', 'tag tag-mark', 'mark'));
      if (ev.note) what.append(document.createTextNode(` ${ev.note}`));
      tr.append(time, el('td', null, where(ev.channel, ev.site)), what, el('td', null, ''), el('td', null, ''));
    } else {
      const e = ev.episode;
      const kind = e.label === 'twitch' ? 'twitch' : e.pattern === 'clonic' ? 'clonic' : 'tonic';
      const what = el('td');
      what.append(el('span', `tag tag-${kind}`, e.label === 'twitch' ? 'twitch' : `spasm ${e.pattern}`));
      if (e.truncated) what.append(document.createTextNode(' (cut)'));
      const unitText = e.unit === 'uV' ? 'µV' : '× floor';
      tr.append(time, el('td', null, where(e.channel, e.site)), what,
                el('td', null, secs(e.duration_s)), el('td', null, `${num(e.peak)} ${unitText}`));
    }
    if (fresh) setTimeout(() => tr.classList.remove('new'), 3000);   // no animation: it repaints
    const body = $('episodes');
    body.prepend(tr);
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
    S.nEpisodes++;
  }

  function addLinkRow(ev) {
    const li = el('li');
    li.append(el('span', 't', clockTenth(ev.time_s)));
    let text = '';
    switch (ev.kind) {
      case 'loss': text = `lost ${ev.samples} samples (${(ev.duration_s * 1000).toFixed(0)} ms)`; break;
      case 'reconnect': text = 'reconnected'; break;
      case 'malformed': text = 'malformed packets skipped'; break;
      case 'nosignal': text = `no signal on ${where(ev.channel, ev.site)}`; break;
      case 'signal': text = `signal back on ${where(ev.channel, ev.site)} after ${secs(ev.duration_s)}`; break;
      case 'end': text = ev.rejected
        ? `not muscle on ${where(ev.channel, ev.site)}: ${secs(ev.rejected.duration_s)} (${ev.rejected.because}), not counted`
        : `activity on ${where(ev.channel, ev.site)} ended`; break;
      default: text = ev.kind;
    }
    li.append(document.createTextNode(text));
    const list = $('linklog');
    list.prepend(li);
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
    S.nLink++;
  }

  function countRows() {
    $('n-episodes').textContent = S.nEpisodes ? `(${S.nEpisodes})` : '';
    $('n-link').textContent = S.nLink ? `(${S.nLink})` : '';
    $('no-episodes').hidden = S.nEpisodes > 0;
    $('no-link').hidden = S.nLink > 0;
  }

  function onEnd(message) {
    S.ended = true;
    const s = message.summary || {};
    const conn = $('conn');
    conn.textContent = s.interrupted ? 'stream stopped' : 'stream ended';
    conn.className = 'conn conn-ended';
    $('mark').disabled = true;
    $('mark-status').textContent = `The stream ended after ${secs(s.duration_s)}: ${s.twitches} twitches, ${s.spasms} spasms.`;
    if (message.status) applyStatus(message.status);
    S.dirty = true;
  }

  // ------------------------------------------------------------------------ connection
  function connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${proto}://${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    S.ws = ws;
    ws.onopen = () => { S.retry = 0; stats.connects++; };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') { onFrame(m.data); return; }
      const msg = JSON.parse(m.data);
      switch (msg.type) {
        case 'hello': setup(msg); setConn(); break;
        case 'events': for (const ev of msg.events) onEvent(ev); break;
        case 'end': onEnd(msg); break;
        case 'waiting': $('conn').textContent = 'waiting for the stream…'; break;
        case 'mark-ack': break;
        case 'error': markStatus(msg.error, true); break;
        default: break;
      }
    };
    ws.onclose = () => {
      if (S.ws !== ws) return;
      const conn = $('conn');
      const wait = [1, 2, 5, 10][Math.min(S.retry, 3)];
      S.retry++;
      if (!S.ended) { conn.textContent = `disconnected · retrying in ${wait} s`; conn.className = 'conn conn-down'; }
      setTimeout(connect, wait * 1000);
    };
  }

  function setConn() {
    const conn = $('conn');
    if (S.ended) return;
    conn.textContent = S.paused ? 'paused' : 'live';
    conn.className = S.paused ? 'conn conn-wait' : 'conn conn-live';
    $('mark').disabled = false;
  }

  // -------------------------------------------------------------------------- controls
  $('pause').addEventListener('click', togglePause);
  document.addEventListener('keydown', (e) => {
    if (e.code === 'Space' && e.target === document.body) { e.preventDefault(); togglePause(); }
  });
  function togglePause() {
    S.paused = !S.paused;
    $('pause').textContent = S.paused ? 'Resume' : 'Pause';
    if (!S.paused) { S.viewT = 0; S.dirty = true; }
    setConn();
  }
  $('window').addEventListener('input', (e) => {
    S.windowS = Math.max(10, Math.min(MAX_WINDOW_S, Number(e.target.value) || 10));
    $('window-out').textContent = `${S.windowS} s`;
    S.dirty = true;
    if (S.paused) { S.xmin = S.xmax - S.windowS; S.charts.forEach((u, k) => u.setData(S.data[k])); }
  });
  $('sound').addEventListener('change', (e) => {
    S.sound = e.target.checked;
    if (S.sound) { ensureAudio(); beep(0.08); }
  });

  let audio = null;
  function ensureAudio() {
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === 'suspended') audio.resume();
  }
  function beep(volume = 0.2) {
    try {
      ensureAudio();
      const t = audio.currentTime;
      for (const start of [0, 0.35]) {
        const osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = 880;
        gain.gain.setValueAtTime(volume, t + start);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + start + 0.25);
        osc.connect(gain).connect(audio.destination);
        osc.start(t + start); osc.stop(t + start + 0.26);
      }
    } catch (err) { /* no audio output: the banner and the title remain */ }
  }

  // manual marks: POST /api/mark; the mark shows in the list once the pipeline wrote it
  $('mark-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (S.ended) return;
    const body = { note: $('mark-note').value.trim(), channel: $('mark-channel').value || null };
    const button = $('mark');
    button.disabled = true;
    try {
      const res = await fetch('api/mark', {
        method: 'POST', headers: { 'Content-Type': 'application/json', ...authHeaders },
        body: JSON.stringify(body), credentials: 'same-origin',
      });
      const answer = await res.json().catch(() => ({}));
      if (res.status === 202) {
        S.pendingMark = answer.mark.id;
        stats.marks.push({ id: answer.mark.id, sent: Date.now() });
        markStatus(`Mark sent at ${clockTenth(answer.mark.time_s)}…`);
        $('mark-note').value = '';
        // the pipeline may have recorded it before this answer came back
        const early = recordedEarly.get(answer.mark.id);
        if (early) { recordedEarly.delete(answer.mark.id); onMarkRecorded(early); }
      } else {
        markStatus(answer.error || (answer.detail ? 'invalid mark' : `refused (${res.status})`), true);
      }
    } catch (err) {
      markStatus('not sent: the dashboard cannot be reached', true);
    } finally {
      setTimeout(() => { if (!S.ended) button.disabled = false; }, 300);
    }
  });
  // marks recorded before the answer to their request arrived (keyed by id)
  const recordedEarly = new Map();
  function onMarkRecorded(ev) {
    const mine = stats.marks.find((m) => m.id === ev.id);
    if (!mine && recordedEarly.size < 64) recordedEarly.set(ev.id, ev);
    if (mine) mine.recorded = Date.now();
    const files = ev.recorded ? 'written to the episode file / recording' : 'shown here (no file is being written)';
    const w = wall(ev.time_s);
    if (mine) markStatus(`Mark recorded at ${clockTenth(ev.time_s)}${w ? ` (${w})` : ''}: ${files}.`);
  }
  function markStatus(text, error = false) {
    const s = $('mark-status');
    s.textContent = text;
    s.classList.toggle('err', error);
  }

  // tabs and views
  document.querySelectorAll('.tabs button').forEach((b) => b.addEventListener('click', () => {
    document.querySelectorAll('.tabs button').forEach((x) => x.classList.toggle('active', x === b));
    for (const name of ['episodes', 'linklog', 'today']) $(`tab-${name}`).hidden = name !== b.dataset.tab;
    S.tab = b.dataset.tab;
    if (S.tab === 'today') loadToday();
  }));
  $('open-diary').addEventListener('click', () => document.querySelector('.views button[data-view=diary]').click());
  document.querySelectorAll('.views button').forEach((b) => b.addEventListener('click', () => {
    S.view = b.dataset.view;
    document.querySelectorAll('.views button').forEach((x) => x.classList.toggle('active', x === b));
    $('view-live').hidden = S.view !== 'live';
    $('view-diary').hidden = S.view !== 'diary';
    if (S.view === 'diary') loadDiary();
    else resize();
  }));

  // ----------------------------------------------------------------------------- diary
  async function loadDiary() {
    const status = $('diary-status');
    status.textContent = 'computing…';
    try {
      const res = await fetch('api/diary', { headers: authHeaders, credentials: 'same-origin' });
      const data = await res.json();
      if (!res.ok) { status.textContent = data.error || `unavailable (${res.status})`; return; }
      renderDiary(data);
      status.textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
    } catch (err) {
      status.textContent = 'the dashboard cannot be reached';
    }
  }
  $('diary-refresh').addEventListener('click', loadDiary);
  setInterval(() => { if (S.view === 'diary' && !document.hidden) loadDiary(); }, 20000);
  setInterval(() => { if (S.tab === 'today' && !document.hidden) loadToday(); }, 5000);

  // the diary in brief (side panel): flags and figures per day and site, no plots
  async function loadToday() {
    try {
      const res = await fetch('api/diary?plots=0', { headers: authHeaders, credentials: 'same-origin' });
      const d = await res.json();
      if (!res.ok) { $('today-status').textContent = d.error || ''; return; }
      const flags = $('today-flags');
      flags.replaceChildren();
      if (!d.flags.length) flags.append(el('li', 'none', 'No flag so far.'));
      for (const f of d.flags) flags.append(el('li', f.kind, f.message));
      const rows = [];
      for (const day of d.days) for (const s of day.sites) rows.push({ day: shortDay(day.day), ...s });
      table($('today-sites'), [['day', 'day'], ['site', 'site'], ['twitches', 'twitches'],
                               ['spasms', 'spasms'], ['spasm_time_s', 'in spasm']], rows);
      $('today-status').textContent = '';
    } catch (err) {
      $('today-status').textContent = 'the dashboard cannot be reached';
    }
  }

  function renderDiary(d) {
    S.diaryVersion = d.version;
    $('diary-disclaimer').textContent = d.disclaimer;
    const t = d.totals || {};
    const totals = $('diary-totals');
    totals.replaceChildren();
    for (const [label, value] of [['twitches', t.twitches], ['spasms', t.spasms],
                                  ['time in spasm', secs(t.spasm_time_s)],
                                  ['longest spasm', secs(t.longest_spasm_s)],
                                  ['sessions', (d.sessions || []).join(', ') || '–']]) {
      const span = el('span');
      span.append(document.createTextNode(`${label} `), el('b', null, value == null ? '–' : String(value)));
      totals.append(span);
    }
    const flags = $('diary-flags');
    flags.replaceChildren();
    if (!d.flags.length) flags.append(el('li', 'none', 'No flag: no prolonged spasm on 3 days in a row, none at the neck or back, none unusually long.'));
    for (const f of d.flags) flags.append(el('li', f.kind, f.message));
    const cols = [['day', 'day'], ['twitches', 'twitches'], ['spasms', 'spasms'],
                  ['spasm_time_s', 'time in spasm'], ['longest_spasm_s', 'longest'],
                  ['tonic', 'tonic'], ['clonic', 'clonic']];
    table($('diary-days'), cols, d.days);
    const rows = [];
    for (const day of d.days) for (const s of day.sites) rows.push({ day: day.day, ...s });
    table($('diary-sites'), [['day', 'day'], ['site', 'site'], ...cols.slice(1)], rows);
    const plots = $('diary-plots');
    plots.replaceChildren();
    for (const p of d.plots || []) {
      const fig = el('figure');
      const img = el('img');
      img.alt = p.caption;
      img.src = `api/diary/plot/${p.name}.png?v=${d.version}`;
      fig.append(img, el('figcaption', null, p.caption));
      plots.append(fig);
    }
  }

  function table(node, cols, rows) {
    node.replaceChildren();
    const head = el('tr');
    for (const [, label] of cols) head.append(el('th', null, label));
    node.append(head);
    for (const r of rows) {
      const tr = el('tr');
      for (const [key] of cols) {
        const v = r[key];
        const text = key.endsWith('_s') ? secs(v) : v == null ? '–' : String(v);
        tr.append(el('td', typeof v === 'string' ? 'l' : null, text));
      }
      node.append(tr);
    }
  }

  connect();
})();
