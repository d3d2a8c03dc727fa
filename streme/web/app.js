'use strict';
/*
 * streme's web page. How this works:
 * - api() wraps fetch for /api/...: it sends the API token kept in localStorage, turns an
 *   error's JSON into an Error holding the server's sentence, and opens the token form on 401.
 * - Three polls run while the page is visible: torrents every second, stats every 3 s, the
 *   cache every 5 s; an action (pin, remove, download) refreshes its list at once.
 * - The lists are <ul>s of card rows keyed by data-infohash and updated in place (syncRows),
 *   so a poll neither steals focus nor rebuilds the row under the pointer.
 * - play() points the <video> at a stream URL and loads /api/files/<ih> in the background to
 *   fill the file picker and the subtitle <track>s. Captions are drawn into #captions from the
 *   chosen track's active cues: that track is 'hidden' (it loads, the browser draws nothing),
 *   the others 'disabled'.
 * - Text from the server (torrent names, paths, messages) goes into the page with textContent,
 *   never as HTML.
 */
(() => {
  const $ = (id) => document.getElementById(id);
  const API_TOKEN = 'streme.apiToken';
  const STREAM_TOKEN = 'streme.streamToken';
  const NO_ANSWER = 'The server did not answer; retrying.';
  const PLAY_FAILED = 'The browser could not play this file: it may be a format it does not ' +
    'support (e.g. MKV with HEVC); try VLC with the M3U link.';
  const STREAM_BROKE = 'The stream stopped: the connection to the server broke. Press play to try again.';
  const STATES = {
    adding: 'Starting', metadata: 'Fetching metadata', downloading: 'Downloading',
    complete: 'Complete', failed: 'Failed',
  };

  const CACHE_PAGE = 100, CACHE_LIMIT_MAX = 1000; // the API's page size bounds
  const state = {
    tokenMode: null, // 'api' or 'stream' while the token form is open
    current: null, // {infohash, name, url} of the title in the player
    src: '', // the player's stream URL, without the stream token
    generation: 0, // bumped by play(): answers about an older title are dropped
    videos: [], // the video files of the title in the player
    track: null, // the TextTrack drawn into #captions
    busy: new Map(), // load function -> true when it should run again once done
    cacheLimit: CACHE_PAGE, // titles the cache list asks for
  };

  // ---- storage, DOM, words and numbers ----

  function stored(key) {
    try { return localStorage.getItem(key) || ''; } catch { return ''; }
  }

  function store(key, value) {
    try { localStorage.setItem(key, value); } catch { /* storage off: nothing kept */ }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(className, text, onClick) {
    const node = el('button', className, text);
    node.type = 'button';
    node.addEventListener('click', onClick);
    return node;
  }

  // The server's messages start in lower case and have no full stop.
  function sentence(text) {
    const s = String(text).trim();
    return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
  }

  function formatBytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return i === 0 ? `${n} B` : `${n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
  }

  const formatRate = (n) => `${formatBytes(n)}/s`;
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

  function formatAgo(unixSeconds) {
    const s = Math.max(0, Date.now() / 1000 - unixSeconds);
    if (s < 45) return 'just now';
    if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
    if (s < 86400) return `${plural(Math.round(s / 3600), 'hour')} ago`;
    const days = Math.round(s / 86400);
    return days === 1 ? 'yesterday' : `${days} days ago`;
  }

  function formatUptime(s) {
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    return s < 86400 ? `${Math.floor(s / 3600)} h` : `${Math.floor(s / 86400)} d`;
  }

  function withStreamToken(url) {
    const token = stored(STREAM_TOKEN);
    return token ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : url;
  }

  // ---- the message line and the token form ----

  function showMessage(text, kind = 'error') {
    $('message').textContent = text;
    $('message-bar').dataset.kind = kind;
    $('message-bar').classList.toggle('shown', Boolean(text));
    $('message-close').hidden = !text;
  }

  function clearMessage(onlyThis) {
    if (!onlyThis || $('message').textContent === onlyThis) showMessage('', 'info');
  }

  function report(err) {
    if (err && err.status === 401) return; // the token form says it
    showMessage(err && err.message ? err.message : 'Something went wrong in the page.');
  }

  function askToken(mode, rejected) {
    const forApi = mode === 'api';
    state.tokenMode = mode;
    $('token-text').textContent = forApi
      ? 'This server asks for its API token (api.token in its config).'
      : 'This server asks for a token on its stream URLs (http.stream_token in its config).';
    if (rejected) {
      showMessage(forApi
        ? "The API token was not accepted: check api.token in the server's config, then enter it again."
        : "The stream token was not accepted: check http.stream_token in the server's config, then enter it again.");
    }
    if ($('token-form').hidden) {
      $('token-form').hidden = false;
      $('token-input').value = '';
      $('token-input').focus();
    }
  }

  function saveToken(event) {
    event.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) { showMessage('Enter the token first.'); return; }
    const mode = state.tokenMode || 'api';
    store(mode === 'stream' ? STREAM_TOKEN : API_TOKEN, value);
    $('token-input').value = '';
    $('token-form').hidden = true;
    state.tokenMode = null;
    clearMessage();
    if (mode === 'stream' && state.current) play({ ...state.current, url: state.src });
    if (mode === 'api' && state.current) loadFiles(state.current, state.generation);
    refreshAll();
  }

  // ---- the API and the polls ----

  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  async function api(path, options = {}) {
    const token = stored(API_TOKEN);
    const headers = { ...options.headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) };
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch {
      throw new ApiError(NO_ANSWER, 0);
    }
    const body = await response.json().catch(() => null);
    if (response.status === 401) {
      askToken('api', Boolean(token));
      throw new ApiError('', 401);
    }
    clearMessage(NO_ANSWER);
    if (response.ok) return body;
    throw new ApiError(body && body.message ? sentence(body.message)
      : `The server could not do this (${response.statusText || 'an unexpected answer'}).`, response.status);
  }

  // Runs `load` unless it is running already; then once more when that run ends.
  async function refresh(load) {
    if (state.busy.has(load)) { state.busy.set(load, true); return; }
    state.busy.set(load, false);
    try { await load(); } catch (err) { report(err); }
    const again = state.busy.get(load);
    state.busy.delete(load);
    if (again) refresh(load);
  }

  const POLLS = [[loadTorrents, 1], [loadStats, 3], [loadCache, 5]]; // every n seconds
  let ticks = 0;

  function tick() {
    if (document.visibilityState === 'visible' && state.tokenMode !== 'api') {
      for (const [load, every] of POLLS) if (ticks % every === 0) refresh(load);
    }
    ticks += 1;
  }

  function refreshAll() {
    for (const [load] of POLLS) refresh(load);
  }

  // ---- the lists ----

  // Makes `list` show one row per item, in order, reusing the rows by infohash.
  function syncRows(list, items, make, fill, emptyText) {
    const old = new Map([...list.children].map((row) => [row.dataset.infohash, row]));
    items.forEach((item, i) => {
      const row = old.get(item.infohash) || make(item);
      old.delete(item.infohash);
      row.item = item;
      fill(row, item);
      row.classList.toggle('playing', Boolean(state.current && state.current.infohash === item.infohash));
      if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null);
    });
    old.forEach((row) => row.remove());
    if (!items.length) list.append(el('li', 'empty', emptyText));
  }

  // A row: a play button, the name, a line of `fields` (spans with those classes), `extra`.
  function makeRow(className, item, fields, extra = {}) {
    const row = el('li', `row ${className}`);
    row.dataset.infohash = item.infohash;
    const parts = { name: el('span', 'name'), meta: el('span', 'meta'), ...extra };
    parts.play = button('play', 'Play', () => play(row.item));
    for (const field of fields) parts.meta.append(parts[field] = el('span', field));
    const text = el('div', 'row-text');
    text.append(parts.name, parts.meta);
    row.append(parts.play, text, ...Object.values(extra));
    row.parts = parts;
    return row;
  }

  function fillName(parts, item) {
    const name = item.name || item.infohash;
    parts.name.textContent = name;
    parts.name.title = name;
    parts.play.setAttribute('aria-label', `Play ${name}`);
  }

  function makeCacheRow(item) {
    const actions = el('div', 'row-actions');
    const row = makeRow('cache-row', item, ['size', 'served', 'hits', 'partial'], { actions });
    const p = row.parts;
    p.partial.textContent = 'partly downloaded';
    p.pin = button('pin secondary', 'Pin', () => togglePin(row.item));
    p.m3u = el('a', 'm3u', 'M3U');
    p.m3u.title = 'Playlist for VLC or a TV';
    actions.append(p.pin, p.m3u, button('remove danger', 'Remove', () => removeTitle(row.item)));
    return row;
  }

  function fillCacheRow(row, item) {
    const p = row.parts;
    fillName(p, item);
    p.size.textContent = formatBytes(item.bytes || item.files.reduce((sum, f) => sum + f.size, 0));
    p.served.textContent = item.last_served ? `served ${formatAgo(item.last_served)}` : 'never served';
    p.hits.textContent = plural(item.hits, 'hit');
    p.partial.hidden = item.complete;
    p.pin.textContent = item.pinned ? 'Pinned' : 'Pin';
    p.pin.setAttribute('aria-pressed', String(item.pinned));
    p.pin.title = item.pinned ? 'Pinned: the cache keeps it. Click to unpin.' : 'Keep it when the cache makes room';
    p.m3u.href = withStreamToken(`/playlist/${item.infohash}.m3u`);
    row.classList.toggle('pinned', item.pinned);
  }

  function makeTorrentRow(item) {
    const bar = el('div', 'bar'), error = el('p', 'row-error');
    const row = makeRow('torrent-row', item, ['state', 'rates', 'peers'], { bar, error });
    row.parts.progress = el('progress');
    row.parts.progress.max = 1;
    row.parts.percent = el('span', 'percent');
    bar.append(row.parts.progress, row.parts.percent);
    return row;
  }

  function fillTorrentRow(row, item) {
    const p = row.parts;
    fillName(p, item);
    let what = STATES[item.state] || item.state;
    if (item.prefetch && (item.state === 'downloading' || item.state === 'metadata')) what += ' to the cache';
    if (item.readers) what += `, streaming to ${item.readers}`;
    p.state.textContent = what;
    p.rates.textContent = `↓ ${formatRate(item.download_rate)}  ↑ ${formatRate(item.upload_rate)}`;
    p.peers.textContent = plural(item.peers, 'peer');
    p.progress.value = item.progress;
    p.percent.textContent = `${Math.floor(item.progress * 100)}%`;
    p.progress.setAttribute('aria-label', `Progress of ${item.name || item.infohash}`);
    p.error.textContent = item.error ? sentence(item.error) : '';
    p.error.hidden = !item.error;
    p.rates.hidden = p.peers.hidden = p.bar.hidden = item.state === 'failed';
  }

  // The cache list: the most recently served first, `state.cacheLimit` of them (Show more
  // adds a page), those matching the search box when it holds something.
  async function loadCache() {
    const query = $('cache-search').value.trim();
    const params = new URLSearchParams({ sort: 'last_served', limit: String(state.cacheLimit) });
    if (query) params.set('q', query);
    const page = await api(`/api/cache?${params}`);
    const empty = query ? `No title in the cache matches “${query}”.`
      : 'Nothing in the cache yet: play a title or download one to the cache.';
    syncRows($('cache-list'), page.titles, makeCacheRow, fillCacheRow, empty);
    const shown = page.titles.length;
    $('cache-count').textContent = page.total > shown ? `${shown} of ${page.total}` : String(shown);
    $('cache-more').hidden = page.total <= shown || state.cacheLimit >= CACHE_LIMIT_MAX;
  }

  function showMoreTitles() {
    state.cacheLimit = Math.min(state.cacheLimit + CACHE_PAGE, CACHE_LIMIT_MAX);
    refresh(loadCache);
  }

  let searchTimer = 0;
  function onSearch() {  // typing: one request once the keys stop for a moment
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.cacheLimit = CACHE_PAGE; refresh(loadCache); }, 250);
  }

  async function loadTorrents() {
    const torrents = await api('/api/torrents');
    syncRows($('torrent-list'), torrents, makeTorrentRow, fillTorrentRow,
      'No active torrent: a stream or a download from the swarm shows here.');
    $('torrent-count').textContent = String(torrents.length);
  }

  async function loadStats() {
    const s = await api('/api/stats');
    const c = s.cache, ratio = s.requests.hit_ratio;
    const figures = [
      ['hit_ratio', 'Cache hit ratio', ratio === null ? 'no streams yet' : `${Math.round(ratio * 100)}%`],
      ['served_cache', 'Served from cache', formatBytes(s.bytes_served.cache || 0)],
      ['served_swarm', 'Served from swarm', formatBytes(s.bytes_served.swarm || 0)],
      ['download_rate', 'Download', formatRate(s.download_rate)],
      ['upload_rate', 'Upload', formatRate(s.upload_rate)],
      ['active_streams', 'Active streams', String(s.active_streams)],
      ['cache_size', 'Cache size',
        `${formatBytes(c.bytes)}${c.cap ? ` of ${formatBytes(c.cap)}` : ''}, ${plural(c.titles, 'title')}`],
      ['cache_free', 'Free space', formatBytes(c.free)],
    ];
    $('stats').replaceChildren(...figures.map(([key, label, value]) => {
      const figure = el('div');
      figure.dataset.stat = key;
      figure.append(el('dt', '', label), el('dd', '', value));
      return figure;
    }));
    $('server-info').textContent = `${s.version} · up ${formatUptime(s.uptime)}`;
  }

  async function togglePin(item) {
    try {
      await api(`/api/cache/${item.infohash}/pin`, { method: item.pinned ? 'DELETE' : 'PUT' });
    } catch (err) { report(err); }
    refresh(loadCache);
  }

  async function removeTitle(item) {
    const name = item.name || item.infohash;
    if (!window.confirm(`Remove “${name}” from the cache? Its files are deleted from the disk.`)) return;
    try {
      await api(`/api/cache/${item.infohash}`, { method: 'DELETE' });
      showMessage(`Removed “${name}” from the cache.`, 'info');
    } catch (err) { report(err); }
    refresh(loadCache);
    refresh(loadStats);
  }

  // ---- the magnet box ----

  function base32ToHex(text) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const bits = [...text.toUpperCase()].map((c) => alphabet.indexOf(c).toString(2).padStart(5, '0')).join('');
    return bits.match(/.{4}/g).map((nibble) => parseInt(nibble, 2).toString(16)).join('');
  }

  function hashToHex(text) {
    if (/^[0-9a-f]{40}$/i.test(text)) return text.toLowerCase();
    return /^[a-z2-7]{32}$/i.test(text) ? base32ToHex(text) : null;
  }

  // A magnet link or a bare infohash -> {infohash, name, url, magnet?}, or null.
  function parseInput(text) {
    if (!/^magnet:\?/i.test(text)) {
      const infohash = hashToHex(text);
      return infohash && { infohash, name: '', url: `/stream/proxy/${infohash}` };
    }
    const query = text.slice(text.indexOf('?') + 1);
    const params = new URLSearchParams(query);
    for (const xt of params.getAll('xt')) {
      const match = /^urn:btih:(.+)$/i.exec(xt.trim());
      const infohash = match && hashToHex(match[1]);
      if (infohash) return { infohash, name: params.get('dn') || '', url: `/stream/magnet?${query}`, magnet: text };
    }
    return null;
  }

  function readInput() {
    const text = $('magnet-input').value.trim();
    const parsed = text && parseInput(text);
    if (!text) showMessage('Paste a magnet link or an infohash first.');
    else if (!parsed && /^magnet:/i.test(text)) {
      showMessage('This magnet link has no BitTorrent infohash (xt=urn:btih:…) that streme can read.');
    } else if (!parsed) {
      showMessage('This is neither a magnet link nor an infohash (40 hex or 32 base32 characters).');
    }
    return parsed || null;
  }

  function onPlay(event) {
    event.preventDefault();
    const title = readInput();
    if (title) { clearMessage(); play(title); }
  }

  async function onPrefetch() {
    const title = readInput();
    if (!title) return;
    $('prefetch-button').disabled = true;
    try {
      const body = title.magnet ? { magnet: title.magnet } : { infohash: title.infohash };
      const answer = await api('/api/prefetch', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      const name = title.name || answer.name || title.infohash;
      showMessage((answer.status_url
        ? `Downloading “${name}” to the cache: its progress shows under Active torrents.`
        : `“${name}” is already in the cache.`) +
        (answer.client_trackers_ignored ? " The magnet's trackers were not used (p2p.allow_client_trackers is off)." : ''),
      'info');
    } catch (err) { report(err); }
    $('prefetch-button').disabled = false;
    refresh(loadTorrents);
    refresh(loadCache);
  }

  // ---- the player ----

  function play(title) {
    const known = document.querySelector(`.row[data-infohash="${title.infohash}"]`);
    if (!title.name && known) title = { ...title, name: known.item.name };
    state.current = title;
    state.generation += 1;
    $('now-playing').textContent = title.name || title.infohash;
    for (const row of document.querySelectorAll('.row[data-infohash]')) {
      row.classList.toggle('playing', row.dataset.infohash === title.infohash);
    }
    fillFilePicker([], title.url);
    fillSubtitles([]);
    startVideo(title.url);
    loadFiles(title, state.generation);
    $('player').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  function startVideo(url) {
    state.src = url;
    $('video').src = withStreamToken(url);
    $('video').play().catch(() => { /* an error event explains it, or the user presses play */ });
  }

  async function loadFiles(title, generation) {
    let files;
    try {
      files = await api(`/api/files/${title.infohash}`);
    } catch (err) {
      if (generation === state.generation) report(err);
      return;
    }
    if (generation !== state.generation) return;
    fillFilePicker(files.filter((f) => f.index !== null && f.content_type.startsWith('video/')), title.url);
    fillSubtitles(files.filter((f) => f.vtt));
  }

  const fileName = (path) => path.split('/').pop();

  // The file the server streams without ?file= (the API marks it), else the largest.
  function defaultFile(videos) {
    return videos.find((f) => f.default) || [...videos].sort((a, b) => b.size - a.size)[0];
  }

  function fillFilePicker(videos, url) {
    state.videos = videos;
    $('file-picker').replaceChildren(...videos.map((f) => {
      const option = el('option', '', `${f.path} (${formatBytes(f.size)})`);
      option.value = String(f.index);
      return option;
    }));
    const asked = new URL(url, window.location.href).searchParams.get('file');
    $('file-picker').value = asked !== null ? asked : videos.length ? String(defaultFile(videos).index) : '';
    $('file-picker').hidden = videos.length < 2;
  }

  function onPickFile() {
    const file = state.videos.find((f) => String(f.index) === $('file-picker').value);
    if (file) { clearMessage(); startVideo(file.url); }
  }

  function fillSubtitles(subtitles) {
    const video = $('video'), picker = $('subtitle-picker');
    picker.value = '';
    chooseSubtitle();
    video.querySelectorAll('track').forEach((track) => track.remove());
    picker.replaceChildren(new Option('Subtitles off', ''));
    subtitles.forEach((f, i) => {
      const track = el('track');
      Object.assign(track, { kind: 'subtitles', label: fileName(f.path), src: withStreamToken(f.vtt) });
      track.addEventListener('load', drawCaptions);
      video.append(track);
      picker.append(new Option(fileName(f.path), String(i)));
    });
    picker.disabled = subtitles.length === 0;
  }

  function chooseSubtitle() {
    const value = $('subtitle-picker').value;
    if (state.track) state.track.removeEventListener('cuechange', drawCaptions);
    state.track = null;
    [...$('video').querySelectorAll('track')].forEach((element, i) => {
      element.track.mode = String(i) === value ? 'hidden' : 'disabled';
      if (String(i) === value) state.track = element.track;
    });
    if (state.track) state.track.addEventListener('cuechange', drawCaptions);
    drawCaptions();
  }

  function drawCaptions() {
    const cues = state.track && state.track.activeCues ? [...state.track.activeCues] : [];
    const text = (cue) => (cue.getCueAsHTML ? cue.getCueAsHTML().textContent : cue.text);
    $('captions').textContent = cues.map(text).join('\n');
  }

  // The <video> only says "it failed": ask the same URL for one byte to learn why, in words.
  async function explainVideoError() {
    const video = $('video');
    if (!video.error || video.error.code === MediaError.MEDIA_ERR_ABORTED) return;
    const src = video.currentSrc || video.src;
    let response;
    try {
      response = await fetch(src, { headers: { Range: 'bytes=0-0' } });
    } catch {
      showMessage('The server did not answer: check that streme is still running.');
      return;
    }
    const isJson = (response.headers.get('content-type') || '').includes('json');
    const body = isJson ? await response.json().catch(() => null) : null;
    if (!isJson && response.body) response.body.cancel().catch(() => {});
    if ((video.currentSrc || video.src) !== src) return; // another file started meanwhile
    if (response.status === 401 && body && body.error === 'stream_token') {
      askToken('stream', Boolean(stored(STREAM_TOKEN)));
    } else if (body && body.message) {
      showMessage(sentence(body.message));
    } else {
      showMessage(video.error.code === MediaError.MEDIA_ERR_NETWORK && response.ok ? STREAM_BROKE : PLAY_FAILED);
    }
  }

  // A <video> fullscreen on its own hides #captions: take the whole box fullscreen instead.
  function keepCaptionsInFullscreen() {
    if (document.fullscreenElement !== $('video') || !state.track) return;
    document.exitFullscreen().then(() => $('video-box').requestFullscreen()).catch(() => {});
  }

  // ---- start ----

  $('add-form').addEventListener('submit', onPlay);
  $('prefetch-button').addEventListener('click', onPrefetch);
  $('token-form').addEventListener('submit', saveToken);
  $('message-close').addEventListener('click', () => clearMessage());
  $('file-picker').addEventListener('change', onPickFile);
  $('cache-search').addEventListener('input', onSearch);
  $('cache-more').addEventListener('click', showMoreTitles);
  $('subtitle-picker').addEventListener('change', chooseSubtitle);
  $('video').addEventListener('error', explainVideoError);
  $('video').addEventListener('playing', () => clearMessage(STREAM_BROKE));
  document.addEventListener('fullscreenchange', keepCaptionsInFullscreen);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.tokenMode !== 'api') refreshAll();
  });
  fillSubtitles([]);
  tick();
  setInterval(tick, 1000);
})();
