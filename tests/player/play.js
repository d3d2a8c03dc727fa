async ({ url, seeks, timeoutMs, hold }) => {
  const EVENTS = ["loadstart", "durationchange", "loadedmetadata", "loadeddata", "canplay",
    "canplaythrough", "play", "playing", "waiting", "seeking", "seeked", "pause", "stalled",
    "ended", "abort", "emptied", "error"];
  const v = document.createElement("video");
  v.muted = true;
  v.playsInline = true;
  v.preload = "auto";
  document.body.appendChild(v);
  let t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const ranges = (r) => Array.from({ length: r.length }, (_, i) => [r.start(i), r.end(i)]);
  const mediaError = () => (v.error ? { code: v.error.code, message: v.error.message } : null);
  const log = [];
  const marks = [];  // log index where each seek starts
  const record = (event) => log.push({
    t: now(), event, current_time: v.currentTime, ready_state: v.readyState,
    network_state: v.networkState, paused: v.paused, seeking: v.seeking,
    duration: Number.isFinite(v.duration) ? v.duration : null, buffered: ranges(v.buffered),
    error: event === "error" ? mediaError() : null,
  });
  for (const name of EVENTS) v.addEventListener(name, () => record(name));
  let playRejection = null;
  const out = {
    ok: false, phase: "playing", reason: null, t0_epoch_ms: 0, playing_at: null,
    playing_event_at: null, start_position: null, seeks: [], log, error: null,
    play_rejection: null, duration: null, width: 0, height: 0,
  };
  const firstBetween = (from, to, name) => {
    for (let i = from; i < to; i++) if (log[i].event === name) return log[i].t;
    return null;
  };
  // Poll `pred` every 5 ms: {ok: true, t} when it holds, {ok: false, reason} on a media
  // error, a rejected play() or the phase's timeout.
  const waitFor = (pred) => new Promise((resolve) => {
    const deadline = performance.now() + timeoutMs;
    const check = () => {
      if (v.error) { resolve({ ok: false, reason: "media error" }); return true; }
      if (playRejection !== null) {
        resolve({ ok: false, reason: "play() rejected: " + playRejection }); return true;
      }
      if (pred()) { resolve({ ok: true, t: now() }); return true; }
      if (performance.now() > deadline) {
        resolve({ ok: false, reason: "timeout after " + timeoutMs / 1000 + " s" }); return true;
      }
      return false;
    };
    if (check()) return;
    const id = setInterval(() => { if (check()) clearInterval(id); }, 5);
  });
  const until = (from) => Math.min(from + hold, v.duration - 0.1);  // hold, short of the end
  const moving = (from) => !v.paused && !v.seeking && v.readyState >= 3
    && v.currentTime > from + 0.001;
  // The state the poll sees changes before the events announcing it are dispatched (by
  // up to ~30 ms): let queued events arrive, then match them to their phases.
  const finish = async (phase, r) => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    out.playing_event_at = firstBetween(0, marks.length ? marks[0] : log.length, "playing");
    out.seeks.forEach((seek, i) => {
      const to = i + 1 < marks.length ? marks[i + 1] : log.length;
      seek.seeked_event_at = firstBetween(marks[i], to, "seeked");
      seek.playing_event_at = firstBetween(marks[i], to, "playing");
    });
    out.phase = phase;
    out.reason = r.reason;
    out.error = mediaError();
    out.play_rejection = playRejection;
    out.duration = Number.isFinite(v.duration) ? v.duration : null;
    out.width = v.videoWidth;
    out.height = v.videoHeight;
    v.pause();
    return out;
  };

  t0 = performance.now();
  out.t0_epoch_ms = performance.timeOrigin + t0;
  v.src = url;
  v.play().catch((e) => { playRejection = String(e); });
  let r = await waitFor(() => v.readyState >= 1);
  if (!r.ok) return finish("metadata", r);
  out.start_position = v.currentTime;
  r = await waitFor(() => moving(out.start_position));
  if (!r.ok) return finish("playing", r);
  out.playing_at = r.t;
  record("(moving)");
  if (hold > 0) {
    r = await waitFor(() => v.currentTime >= until(out.start_position));
    if (!r.ok) return finish("hold after playing", r);
  }
  for (const target of seeks) {
    marks.push(log.length);
    const seek = { target, issued_at: now(), resumed_at: null, seeked_event_at: null,
      playing_event_at: null };
    out.seeks.push(seek);
    v.currentTime = target;
    record("(seek)");
    r = await waitFor(() => moving(target));
    if (!r.ok) return finish("seek to " + target, r);
    seek.resumed_at = r.t;
    record("(moving)");
    if (hold > 0) {
      r = await waitFor(() => v.currentTime >= until(target));
      if (!r.ok) return finish("hold after seek to " + target, r);
    }
  }
  out.ok = true;
  return finish("done", { reason: null });
}
