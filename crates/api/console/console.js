// Dragoman operator console.
//
// Follows every call over the all-calls WebSocket (`/v1/live`, call events only) and one chosen
// call in detail over its own WebSocket (`/v1/calls/{id}/live`: its stored events from the
// first, then live events and partial transcripts). REST does the rest: the call list when the
// feed (re)starts without a cursor, language changes, hang-up and transcript downloads.
//
// Every request carries the operator's token: `Authorization: Bearer` on REST, `access_token`
// in the query on WebSockets (browsers cannot set their headers). The token is kept in
// sessionStorage (this tab only) and may be given once in the fragment, `#token=...`, which the
// console removes from the address bar at once. `#call=<id>` opens that call once signed in.
//
// Text from calls is only ever set with textContent (see `h`), never parsed as HTML.

const TOKEN_KEY = 'dragoman.console.token';

/// Event types the call list needs from `/v1/live`: transcripts stay on the call's own socket.
const FEED_TYPES = ['CallStarted', 'LegJoined', 'LanguageChanged', 'LanguageDetected', 'TalkingChanged', 'CallEnded'];

/// Languages offered as one-click buttons on every leg, after the languages already in the call.
const FAVOURITE_LANGUAGES = ['en', 'es', 'fr', 'de', 'pt', 'it', 'ar', 'zh'];
const MAX_QUICK_LANGUAGES = 8;

/// How many calls the list loads (newest first); later ones arrive live.
const LIST_LIMIT = 200;

/// Reconnect backoff: doubles from the first delay up to the last, with ±25% jitter.
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/// A socket that stayed open this long starts its backoff again from the first delay.
const BACKOFF_RESET_MS = 10_000;

const session = {
  token: null,
  /// Bumped on every sign-in and sign-out, so that answers to an earlier session are dropped.
  generation: 0,
  /// code → English name, from `/v1/languages`.
  languages: new Map(),
  feed: null,
  /// The last feed cursor seen: a reconnect resumes after it.
  cursor: null,
  /// call_id → record (as `GET /v1/calls` returns it, kept current from the feed).
  calls: new Map(),
  /// Feed frames that arrived while the list was loading, applied once it is in.
  pending: null,
  listLoads: 0,
  selected: null,
  view: null,
  /// A call asked for with `#call=`, opened once the list is in.
  wanted: null,
};

// ---- DOM helpers --------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/// An element with attributes, listeners (`onclick`), `class`, `dataset`, and children: nodes,
/// or strings added as text nodes (so never parsed as HTML). false/null/undefined are skipped.
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/// Runs `render`, then gives focus back to the element with the same `data-focus` key, since
/// re-rendering replaces the element that had it.
function keepingFocus(container, render) {
  const key = container.contains(document.activeElement) ? document.activeElement.dataset.focus : undefined;
  render();
  if (key) container.querySelector(`[data-focus="${CSS.escape(key)}"]`)?.focus();
}

function showError(el, message) {
  el.textContent = message ?? '';
  el.hidden = !message;
}

// ---- Formatting ---------------------------------------------------------------------------

function languageName(code) {
  return session.languages.get(code) ?? code;
}

function languageLabel(code) {
  return code ? `${languageName(code)} (${code})` : 'not set';
}

function partyLabel(party) {
  const name = party?.name?.trim();
  const number = party?.number?.trim();
  if (name && number) return `${name} (${number})`;
  return name || number || '';
}

function callTitle(record) {
  const caller = partyLabel(record.caller) || 'Unknown caller';
  const callee = partyLabel(record.callee) || 'unknown';
  return `${caller} → ${callee}`;
}

function legTitle(name) {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/// The leg's party: its own, else the call's party of the same name.
function legParty(record, name) {
  return partyLabel(record.legs[name]?.party) || (name === 'caller' || name === 'callee' ? partyLabel(record[name]) : '');
}

function clockTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

function duration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  const mm = String(minutes % 60).padStart(hours ? 2 : 1, '0');
  const ss = String(seconds % 60).padStart(2, '0');
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

/// Caller first, callee second, any other leg after them by name.
function compareLegs(a, b) {
  const rank = (name) => (name === 'caller' ? 0 : name === 'callee' ? 1 : 2);
  return rank(a) - rank(b) || a.localeCompare(b);
}

function legSummary(name, leg) {
  const speaks = leg.language ?? (leg.detected_language ? `${leg.detected_language}?` : 'detecting');
  const targets = leg.targets?.length ? ` → ${leg.targets.join(', ')}` : '';
  return `${name}: ${speaks}${targets}`;
}

// ---- REST ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/// A request to the API with the token; throws ApiError with the problem's `detail`. A 401
/// signs out, since the token no longer works.
async function request(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${session.token}` }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `the API does not answer (${err.message})`);
  }
  if (response.ok) return response;
  let detail = `${response.status} ${response.statusText}`;
  try {
    const problem = await response.json();
    if (typeof problem?.detail === 'string') detail = problem.detail;
  } catch {
    // Not problem+json: keep the status line.
  }
  if (response.status === 401) signOut(`The API refused the token: ${detail}`);
  throw new ApiError(response.status, detail);
}

const enc = encodeURIComponent;

// ---- Live sockets -------------------------------------------------------------------------

/// A WebSocket that reconnects with backoff. `path()` is asked again on every connect, so it
/// can resume after what was last seen. `onStatus(state, detail)` reports `connecting`, `live`
/// or `waiting` (with the delay); `onRefused()` runs when a connection closed before opening,
/// which is how a browser sees a refused upgrade (401, 404): REST can say why.
class LiveSocket {
  constructor({ path, onMessage, onOpen, onStatus, onRefused }) {
    Object.assign(this, { path, onMessage, onOpen, onStatus, onRefused });
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    const url = new URL(this.path(), location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('access_token', session.token);
    this.onStatus('connecting');
    const socket = new WebSocket(url);
    let openedAt = null;
    this.socket = socket;
    socket.addEventListener('open', () => {
      openedAt = Date.now();
      this.onStatus('live');
      this.onOpen?.();
    });
    socket.addEventListener('message', (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.onMessage(frame);
    });
    socket.addEventListener('close', (closed) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (openedAt !== null && Date.now() - openedAt >= BACKOFF_RESET_MS) this.attempt = 0;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      this.onStatus('waiting', { delay, code: closed.code, reason: closed.reason });
      this.timer = setTimeout(() => this.connect(), delay);
      if (openedAt === null) this.onRefused?.();
    });
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'done');
  }
}

function statusText(state, detail, what) {
  switch (state) {
    case 'connecting':
      return `Connecting to ${what}…`;
    case 'live':
      return 'Live';
    default: {
      const why = detail?.reason ? `: ${detail.reason}` : '';
      return `Disconnected${why}. Reconnecting in ${Math.ceil((detail?.delay ?? 0) / 1000)} s…`;
    }
  }
}

// ---- The call record, as the API keeps it -------------------------------------------------

function newRecord(callId) {
  return {
    call_id: callId,
    state: 'active',
    started_at: null,
    ended_at: null,
    direction: null,
    caller: {},
    callee: {},
    legs: {},
    end_reason: null,
    duration_ms: null,
    last_seq: 0,
  };
}

function newLeg() {
  return {
    party: {},
    language: null,
    targets: [],
    language_source: null,
    language_changed_at: null,
    detected_language: null,
    detected_probability: null,
    talking: false,
  };
}

const time = (iso) => (iso ? Date.parse(iso) : NaN);

/// A language change applies unless a later one is already in (as the store decides).
function setLanguage(leg, language, targets, source, at) {
  if (time(leg.language_changed_at) > time(at)) return;
  Object.assign(leg, { language, targets: targets ?? [], language_source: source, language_changed_at: at });
}

/// Folds one call event into a record, as the API's store does.
function applyEvent(record, event) {
  const at = event.occurred_at;
  if (!record.started_at || time(at) < time(record.started_at)) record.started_at = at;
  const leg = () => (record.legs[event.leg] ??= newLeg());
  switch (event.type) {
    case 'CallStarted':
      Object.assign(record, { direction: event.direction, caller: event.caller ?? {}, callee: event.callee ?? {} });
      break;
    case 'LegJoined': {
      const joined = leg();
      joined.party = event.party ?? {};
      if (event.language) setLanguage(joined, event.language, event.targets, 'dialplan', at);
      break;
    }
    case 'LanguageChanged':
      setLanguage(leg(), event.language, event.targets, event.source, at);
      break;
    case 'LanguageDetected':
      Object.assign(leg(), { detected_language: event.language, detected_probability: event.probability });
      break;
    case 'TalkingChanged':
      leg().talking = event.talking;
      break;
    case 'CallEnded':
      Object.assign(record, {
        state: 'ended',
        ended_at: at,
        end_reason: event.reason,
        duration_ms: event.duration_ms,
      });
      for (const each of Object.values(record.legs)) each.talking = false;
      break;
    default:
      break;
  }
}

// ---- Signing in and out -------------------------------------------------------------------

/// `#token=...&call=...` in the address: taken once, then removed so that the token stays out
/// of history. Returns the token, if any.
function takeFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has('token') && !params.has('call')) return null;
  history.replaceState(null, '', location.pathname + location.search);
  if (params.get('call')) session.wanted = params.get('call');
  return params.get('token')?.trim() || null;
}

function setConnection(state, text) {
  const el = $('connection');
  el.dataset.state = state;
  el.textContent = text;
}

function stopAll() {
  session.feed?.stop();
  session.feed = null;
  session.view?.close();
  session.view = null;
  session.selected = null;
  session.calls = new Map();
  session.cursor = null;
  session.pending = null;
}

function showSignIn(message) {
  $('workspace').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  showError($('sign-in-error'), message);
  renderCalls();
  showCall(null);
  setConnection('idle', 'Not connected');
  $('token-input').focus();
}

function signOut(message) {
  session.generation += 1;
  session.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stopAll();
  showSignIn(message);
}

/// Checks the token against the API (loading the languages), then starts following calls.
async function signIn(token) {
  stopAll();
  session.generation += 1;
  const generation = session.generation;
  session.token = token;
  setConnection('connecting', 'Checking the token…');
  $('token-submit').disabled = true;
  try {
    const body = await (await request('GET', '/v1/languages')).json();
    if (generation !== session.generation) return;
    session.languages = new Map(body.languages.map((language) => [language.code, language.name]));
  } catch (err) {
    // A 401 has signed out already, with its message.
    if (generation === session.generation) showSignIn(err.message);
    return;
  } finally {
    $('token-submit').disabled = false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token-input').value = '';
  $('sign-in').hidden = true;
  $('workspace').hidden = false;
  $('sign-out').hidden = false;
  startFeed();
}

// ---- The call list ------------------------------------------------------------------------

function startFeed() {
  const generation = session.generation;
  session.feed = new LiveSocket({
    path: () => {
      const query = new URLSearchParams({ partials: 'false', types: FEED_TYPES.join(',') });
      if (session.cursor) query.set('after', session.cursor);
      return `/v1/live?${query}`;
    },
    // Without a cursor the feed starts at its end: what came before is read over REST, after
    // the socket is open, so that nothing falls between the two.
    onOpen: () => {
      if (!session.cursor) loadCalls(generation);
    },
    onMessage: feedFrame,
    onStatus: (state, detail) => setConnection(state, statusText(state, detail, 'the API')),
    onRefused: () => checkToken(generation),
  });
  session.feed.start();
}

/// After a refused WebSocket: a 401 over REST signs out; anything else is shown.
async function checkToken(generation) {
  try {
    await request('GET', '/v1/calls?limit=1');
  } catch (err) {
    if (generation === session.generation && err.status !== 401) setConnection('waiting', err.message);
  }
}

async function loadCalls(generation) {
  const load = ++session.listLoads;
  session.pending = [];
  try {
    const body = await (await request('GET', `/v1/calls?limit=${LIST_LIMIT}`)).json();
    if (generation !== session.generation || load !== session.listLoads) return;
    session.calls = new Map(body.calls.map((record) => [record.call_id, record]));
    const pending = session.pending;
    session.pending = null;
    for (const frame of pending) applyFeedFrame(frame);
    renderCalls();
    if (session.wanted) {
      selectCall(session.wanted);
      session.wanted = null;
    }
  } catch (err) {
    if (generation === session.generation && load === session.listLoads && err.status !== 401) {
      setConnection('waiting', `The call list did not load: ${err.message}`);
    }
  }
}

function feedFrame(frame) {
  if (frame.kind !== 'event' || !frame.event) return;
  if (frame.cursor) session.cursor = frame.cursor;
  if (session.pending) {
    session.pending.push(frame);
    return;
  }
  applyFeedFrame(frame);
  scheduleRenderCalls();
}

function applyFeedFrame(frame) {
  let record = session.calls.get(frame.call_id);
  if (!record) {
    record = newRecord(frame.call_id);
    session.calls.set(frame.call_id, record);
  }
  // Already in the record REST returned.
  if (frame.seq <= record.last_seq) return;
  applyEvent(record, frame.event);
  record.last_seq = frame.seq;
}

let renderQueued = false;
function scheduleRenderCalls() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderCalls();
  });
}

/// Active calls first, then newest first.
function compareCalls(a, b) {
  if (a.state !== b.state) return a.state === 'active' ? -1 : 1;
  return (time(b.started_at) || 0) - (time(a.started_at) || 0) || b.call_id.localeCompare(a.call_id);
}

function renderCalls() {
  const list = $('call-list');
  const calls = [...session.calls.values()].sort(compareCalls);
  keepingFocus(list, () => list.replaceChildren(...calls.map(callItem)));
  $('no-calls').hidden = calls.length > 0 || $('workspace').hidden;
  const active = calls.filter((record) => record.state === 'active').length;
  $('calls-count').textContent = calls.length ? `${active} active · ${calls.length}` : '';
  document.title = active ? `(${active}) Dragoman console` : 'Dragoman console';
}

function callItem(record) {
  const selected = record.call_id === session.selected;
  const started = record.started_at ? `Started ${clockTime(record.started_at)}` : 'Starting';
  const ended = record.state === 'ended' && record.duration_ms != null ? ` · lasted ${duration(record.duration_ms)}` : '';
  const legs = Object.keys(record.legs).sort(compareLegs).map((name) => legSummary(name, record.legs[name]));
  return h(
    'li',
    { class: `call-item ${record.state}`, dataset: { call: record.call_id } },
    h(
      'button',
      {
        type: 'button',
        class: 'call-button',
        'aria-current': selected ? 'true' : false,
        dataset: { focus: `call:${record.call_id}` },
        onclick: () => selectCall(record.call_id),
      },
      h('span', { class: 'call-line' },
        h('span', { class: 'call-parties' }, callTitle(record)),
        h('span', { class: `badge ${record.state}` }, record.state === 'active' ? 'Active' : 'Ended')),
      h('span', { class: 'call-time' }, started + ended),
      h('span', { class: 'call-legs' }, legs.length ? legs.join(' · ') : 'No legs yet'),
    ),
  );
}

function selectCall(callId) {
  if (session.selected === callId) return;
  session.view?.close();
  session.selected = callId;
  session.view = new CallView(callId);
  showCall(session.view);
  renderCalls();
}

function showCall(view) {
  $('no-call').hidden = Boolean(view) || $('workspace').hidden;
  $('call-view').hidden = !view;
  if (!view) $('legs').replaceChildren();
}

// ---- One call -----------------------------------------------------------------------------

/// One call followed live: its legs side by side, each utterance's original text with its
/// translations beneath, partials replaced in place by their final.
class CallView {
  constructor(callId) {
    this.callId = callId;
    this.generation = session.generation;
    this.record = newRecord(callId);
    /// The last stored event seen: a reconnect resumes after it.
    this.lastSeq = 0;
    /// utterance_id → { leg, sequence, start_ms, language, text, stage, translations, el }.
    this.utterances = new Map();
    /// leg → { el, header, status, error, list, signature }.
    this.columns = new Map();
    $('legs').replaceChildren();
    showError($('call-error'), null);
    $('call-status').textContent = '';
    this.resetHangup();
    this.renderHeader();
    this.socket = new LiveSocket({
      path: () => `/v1/calls/${enc(callId)}/live?after=${this.lastSeq}`,
      onMessage: (frame) => this.frame(frame),
      onStatus: (state, detail) => {
        $('call-status').dataset.state = state;
        $('call-status').textContent = state === 'live' ? '' : statusText(state, detail, 'the call');
      },
      onRefused: () => this.checkCall(),
    });
    this.socket.start();
  }

  get current() {
    return session.view === this && this.generation === session.generation;
  }

  close() {
    this.socket.stop();
    clearTimeout(this.hangupTimer);
  }

  /// After a refused socket: an unknown call stops the view; other errors are shown.
  async checkCall() {
    try {
      await request('GET', `/v1/calls/${enc(this.callId)}`);
    } catch (err) {
      if (!this.current || err.status === 401) return;
      showError($('call-error'), err.message);
      if (err.status === 404) {
        this.socket.stop();
        $('call-status').textContent = '';
      }
    }
  }

  frame(frame) {
    if (!this.current || !frame.event) return;
    if (frame.kind === 'event') {
      if (frame.seq <= this.lastSeq) return;
      this.lastSeq = frame.seq;
    } else if (frame.kind !== 'partial') {
      return;
    }
    const event = frame.event;
    switch (event.type) {
      case 'TranscriptProduced':
        this.transcript(event);
        break;
      case 'TranslationProduced':
        this.translation(event);
        break;
      case 'TalkingChanged':
        applyEvent(this.record, event);
        this.column(event.leg).el.classList.toggle('talking', event.talking);
        break;
      default:
        applyEvent(this.record, event);
        if (event.type === 'CallEnded') $('call-status').textContent = '';
        this.renderHeader();
        for (const leg of Object.keys(this.record.legs)) this.renderLeg(leg);
    }
  }

  renderHeader() {
    const record = this.record;
    $('call-title').textContent = record.started_at ? callTitle(record) : record.call_id;
    const parts = [record.call_id];
    if (record.direction) parts.push(record.direction === 'outbound' ? 'Outbound' : 'Inbound');
    if (record.started_at) parts.push(`started ${clockTime(record.started_at)}`);
    if (record.state === 'ended') {
      const reason = record.end_reason ? ` (${record.end_reason})` : '';
      const lasted = record.duration_ms != null ? `, lasted ${duration(record.duration_ms)}` : '';
      parts.push(`ended${reason}${lasted}`);
    } else {
      parts.push('active');
    }
    $('call-meta').textContent = parts.join(' · ');
    $('call-view').dataset.state = record.state;
    $('hangup').disabled = record.state === 'ended';
  }

  // -- Legs --

  column(leg) {
    let column = this.columns.get(leg);
    if (column) return column;
    this.record.legs[leg] ??= newLeg();
    const titleId = `leg-${this.columns.size}-title`;
    const header = h('header', { class: 'leg-header' });
    const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    const list = h('ol', { class: 'utterances', 'aria-label': `${legTitle(leg)}: what was said`, tabindex: '0' });
    const el = h('section', { class: 'leg', dataset: { leg }, 'aria-labelledby': titleId }, header, status, error, list);
    column = { el, header, status, error, list, titleId, signature: null };
    this.columns.set(leg, column);
    const order = [...this.columns.keys()].sort(compareLegs);
    const next = this.columns.get(order[order.indexOf(leg) + 1]);
    $('legs').insertBefore(el, next ? next.el : null);
    this.renderLeg(leg);
    return column;
  }

  /// The languages offered as buttons: those already in the call, then the favourites.
  quickLanguages() {
    const legs = Object.keys(this.record.legs).sort(compareLegs).map((name) => this.record.legs[name]);
    const inCall = legs.flatMap((leg) => [leg.language, ...(leg.targets ?? [])]);
    const codes = [...new Set([...inCall, ...FAVOURITE_LANGUAGES])].filter((code) => code && session.languages.has(code));
    return codes.slice(0, Math.max(MAX_QUICK_LANGUAGES, new Set(inCall).size));
  }

  renderLeg(leg) {
    const column = this.column(leg);
    const data = this.record.legs[leg];
    const quick = this.quickLanguages();
    const ended = this.record.state === 'ended';
    const signature = JSON.stringify([data, quick, ended, legParty(this.record, leg)]);
    column.el.classList.toggle('talking', Boolean(data.talking));
    if (signature === column.signature) return;
    column.signature = signature;
    keepingFocus(column.header, () => column.header.replaceChildren(...this.legHeader(leg, data, quick, ended, column)));
  }

  legHeader(leg, data, quick, ended, column) {
    const title = legTitle(leg);
    const party = legParty(this.record, leg);
    const speaks = data.language ?? data.detected_language;
    const detected =
      data.detected_language && data.detected_language !== data.language
        ? h('span', { class: 'detected' }, `detected ${languageName(data.detected_language)}` +
            (data.detected_probability != null ? ` ${Math.round(data.detected_probability * 100)}%` : ''))
        : null;
    const source = data.language_source ? h('span', { class: 'source' }, `set by ${data.language_source}`) : null;

    const buttons = quick.map((code) =>
      h('button', {
        type: 'button',
        class: 'lang-button',
        dataset: { leg, language: code, focus: `speak:${code}` },
        'aria-pressed': String(code === data.language),
        'aria-label': `${title} speaks ${languageName(code)}`,
        title: languageName(code),
        disabled: ended,
        onclick: () => code !== data.language && this.changeLanguage(leg, code, data.targets ?? []),
      }, code.toUpperCase()));
    const other = this.languageSelect({
      label: `Another language ${title} speaks`,
      placeholder: 'Other…',
      exclude: quick,
      focus: 'speak:other',
      disabled: ended,
      onchoose: (code) => this.changeLanguage(leg, code, data.targets ?? []),
    });

    const chips = (data.targets ?? []).map((code) =>
      h('li', { class: 'chip', dataset: { target: code } },
        h('span', { lang: code }, languageName(code)),
        h('button', {
          type: 'button',
          class: 'chip-remove',
          'aria-label': `Stop translating ${title} into ${languageName(code)}`,
          title: 'Remove',
          dataset: { focus: `target-remove:${code}` },
          disabled: ended || !speaks,
          onclick: () => this.changeLanguage(leg, speaks, data.targets.filter((t) => t !== code)),
        }, '×')));
    const add = this.languageSelect({
      label: `Also translate ${title} into`,
      placeholder: 'Add…',
      exclude: [...(data.targets ?? []), speaks],
      focus: 'target-add',
      disabled: ended || !speaks,
      onchoose: (code) => this.changeLanguage(leg, speaks, [...(data.targets ?? []), code]),
    });

    return [
      h('h3', { id: column.titleId },
        h('span', { class: 'leg-name' }, title),
        party ? h('span', { class: 'party' }, party) : null,
        h('span', { class: 'talking-indicator', 'aria-hidden': 'true', title: 'Speaking' })),
      h('p', { class: 'speaks' }, 'Speaks ', h('strong', { class: 'leg-language' }, languageLabel(data.language)), ' ',
        source, ' ', detected),
      h('div', { class: 'lang-picker', role: 'group', 'aria-label': `Change the language ${title} speaks` },
        buttons, other),
      h('div', { class: 'targets' },
        h('span', { class: 'label' }, 'Translated into'),
        chips.length ? h('ul', { class: 'chips', 'aria-label': `${title} is translated into` }, chips)
          : h('span', { class: 'none' }, 'nothing'),
        add),
    ];
  }

  languageSelect({ label, placeholder, exclude, focus, disabled, onchoose }) {
    const options = [...session.languages]
      .filter(([code]) => !exclude.includes(code))
      .sort((a, b) => a[1].localeCompare(b[1]))
      .map(([code, name]) => h('option', { value: code }, `${name} (${code})`));
    const select = h('select', { 'aria-label': label, dataset: { focus }, disabled },
      h('option', { value: '' }, placeholder), options);
    select.addEventListener('change', () => {
      if (select.value) onchoose(select.value);
    });
    return select;
  }

  /// `PUT …/legs/{leg}/language`; the leg's header changes when `LanguageChanged` comes back.
  async changeLanguage(leg, language, targets) {
    const column = this.column(leg);
    const title = legTitle(leg);
    showError(column.error, null);
    column.status.textContent = `Setting ${title} to ${languageName(language)}…`;
    const body = { language, targets: [...new Set(targets)].filter((t) => t !== language) };
    try {
      await request('PUT', `/v1/calls/${enc(this.callId)}/legs/${enc(leg)}/language`, body);
      if (!this.current) return;
      const into = body.targets.length ? `, translated into ${body.targets.map(languageName).join(', ')}` : '';
      column.status.textContent = `${title}: ${languageName(language)}${into}. Applied.`;
    } catch (err) {
      if (!this.current) return;
      column.status.textContent = '';
      showError(column.error, `Could not change the language: ${err.message}`);
    }
    // The header shows what the call has (LanguageChanged updates it): put the selects back.
    column.signature = null;
    this.renderLeg(leg);
  }

  // -- Utterances --

  utterance(event) {
    let utterance = this.utterances.get(event.utterance_id);
    if (utterance) return utterance;
    utterance = {
      id: event.utterance_id,
      leg: event.leg,
      sequence: event.sequence,
      start_ms: event.start_ms,
      language: null,
      text: '',
      stage: null,
      translations: new Map(),
      el: null,
    };
    this.utterances.set(utterance.id, utterance);
    return utterance;
  }

  transcript(event) {
    const utterance = this.utterance(event);
    // A partial that comes after its final changes nothing.
    if (utterance.stage === 'final' && event.stage !== 'final') return;
    Object.assign(utterance, {
      text: event.text,
      stage: event.stage,
      language: event.language,
      start_ms: event.start_ms,
      confidence: event.confidence,
    });
    this.renderUtterance(utterance);
  }

  translation(event) {
    const utterance = this.utterance(event);
    if (!utterance.stage) {
      // The translation came first: show the text it was made from until the transcript comes.
      Object.assign(utterance, { text: event.source_text, stage: event.stage, language: event.source_language });
    }
    const previous = utterance.translations.get(event.target_language);
    if (previous?.stage === 'final' && event.stage !== 'final') return;
    utterance.translations.set(event.target_language, { text: event.text, stage: event.stage, engine: event.engine });
    this.renderUtterance(utterance);
  }

  renderUtterance(utterance) {
    const column = this.column(utterance.leg);
    const list = column.list;
    const follow = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    if (!utterance.el) {
      utterance.el = h('li', { dataset: { utterance: utterance.id, sequence: utterance.sequence } });
      const after = [...list.children].find((li) => Number(li.dataset.sequence) > utterance.sequence);
      list.insertBefore(utterance.el, after ?? null);
    }
    const el = utterance.el;
    const provisional = utterance.stage !== 'final';
    // A partial that just became final is highlighted for a moment, so the change is seen.
    if (!provisional && el.classList.contains('partial')) {
      el.classList.add('settled');
      setTimeout(() => el.classList.remove('settled'), 1500);
    }
    el.classList.add('utterance');
    el.classList.toggle('partial', provisional);
    el.classList.toggle('final', !provisional);
    el.setAttribute('aria-busy', String(provisional));
    const translations = [...utterance.translations]
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([code, translation]) =>
        h('li', { class: `translation ${translation.stage === 'final' ? 'final' : 'partial'}`, lang: code,
          dataset: { language: code } },
          h('abbr', { class: 'lang', title: languageName(code) }, code.toUpperCase()),
          h('span', { class: 'text' }, translation.text)));
    el.replaceChildren(...[
      h('p', { class: 'original', lang: utterance.language || false },
        h('span', { class: 'time' }, duration(utterance.start_ms ?? 0)),
        utterance.language ? h('abbr', { class: 'lang', title: languageName(utterance.language) },
          utterance.language.toUpperCase()) : null,
        provisional ? h('span', { class: 'visually-hidden' }, 'provisional: ') : null,
        h('span', { class: 'text' }, utterance.text)),
      translations.length ? h('ul', { class: 'translations' }, translations) : null,
    ].filter(Boolean));
    if (follow) list.scrollTop = list.scrollHeight;
  }

  // -- Actions --

  resetHangup() {
    clearTimeout(this.hangupTimer);
    const button = $('hangup');
    delete button.dataset.confirm;
    button.textContent = 'Hang up';
  }

  /// Hang-up asks for a second click within a few seconds instead of a modal dialog.
  async hangup() {
    const button = $('hangup');
    if (button.dataset.confirm !== 'yes') {
      button.dataset.confirm = 'yes';
      button.textContent = 'Click again to hang up';
      this.hangupTimer = setTimeout(() => this.resetHangup(), 4000);
      return;
    }
    this.resetHangup();
    showError($('call-error'), null);
    $('call-status').textContent = 'Hanging up…';
    try {
      await request('POST', `/v1/calls/${enc(this.callId)}/hangup`, { reason: 'operator' });
      if (this.current) $('call-status').textContent = 'Hanging up: the call ends when the PBX confirms.';
    } catch (err) {
      if (!this.current) return;
      $('call-status').textContent = '';
      showError($('call-error'), `Could not hang up: ${err.message}`);
    }
  }

  /// Fetches the transcript with the token and saves it through a Blob URL (a plain link
  /// could not send the header).
  async download(format) {
    const extension = { json: 'json', srt: 'srt', vtt: 'vtt', txt: 'txt' }[format];
    const filename = `dragoman-${this.callId.replace(/[^A-Za-z0-9._-]/g, '_')}.${extension}`;
    showError($('call-error'), null);
    try {
      const response = await request('GET', `/v1/calls/${enc(this.callId)}/transcript?format=${format}`);
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, download: filename, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      if (this.current) $('call-status').textContent = `Saved ${filename} (${blob.size} bytes).`;
    } catch (err) {
      if (this.current) showError($('call-error'), `Could not download the transcript: ${err.message}`);
    }
  }
}

// ---- Start --------------------------------------------------------------------------------

function start() {
  $('token-form').addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    const token = $('token-input').value.trim();
    if (token) signIn(token);
  });
  $('sign-out').addEventListener('click', () => signOut());
  $('hangup').addEventListener('click', () => session.view?.hangup());
  for (const button of document.querySelectorAll('[data-format]')) {
    button.addEventListener('click', () => session.view?.download(button.dataset.format));
  }
  window.addEventListener('hashchange', () => {
    const token = takeFragment();
    if (token) signIn(token);
    else if (session.wanted && session.token) {
      selectCall(session.wanted);
      session.wanted = null;
    }
  });
  const token = takeFragment() ?? sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else showSignIn();
}

start();
