import 'uplot/dist/uPlot.min.css';
import './style.css';
import { connectEvents, eventsUrl, type ConnectionStatus } from './connection.js';
import { Header, type ConnView } from './render/header.js';
import { EventLogView } from './render/log.js';
import { ChartPanels } from './render/panels.js';
import { RunInfoView } from './render/run-info.js';
import { WorkersTable } from './render/workers.js';
import { applyEvents, beginConnection, createState, type DashboardState } from './state.js';

/** Charts redraw at most this often (the rest of the page every animation frame). */
const CHART_INTERVAL_MS = 250;

const state = createState();
const conn: ConnView = { status: 'connecting' };
const header = new Header();
const charts = new ChartPanels();
const workers = new WorkersTable();
const log = new EventLogView();
const runInfo = new RunInfoView();

let frame = 0;
let renders = 0;
let renderedVersion = -1;
let chartVersion = -1;
let chartAt = 0;
let chartTimer: ReturnType<typeof setTimeout> | null = null;

function render(): void {
  frame = 0;
  const now = Date.now();
  header.render(state, conn, now);
  workers.render(state, now);
  if (state.version !== renderedVersion) {
    log.render(state);
    runInfo.render(state);
    renderedVersion = state.version;
  }
  if (state.version !== chartVersion) {
    const wait = CHART_INTERVAL_MS - (now - chartAt);
    if (wait <= 0) {
      charts.render(state);
      chartVersion = state.version;
      chartAt = now;
    } else chartTimer ??= setTimeout(() => {
      chartTimer = null;
      schedule();
    }, wait);
  }
  renders++;
  document.body.dataset.version = String(state.version);
  document.body.dataset.chartVersion = String(chartVersion);
}

function schedule(): void {
  if (frame === 0) frame = requestAnimationFrame(render);
}

/** Debug/test hook: the live state, the uPlot instances and a render counter. */
declare global {
  interface Window {
    __dptrain?: { state: DashboardState; charts: ChartPanels; renders: () => number; conn: ConnView };
  }
}
window.__dptrain = { state, charts, renders: () => renders, conn };

connectEvents(
  eventsUrl(window.location),
  {
    onOpen: () => beginConnection(state),
    onEvents: (events) => {
      if (applyEvents(state, events) > 0) schedule();
    },
    onStatus: (status: ConnectionStatus, d) => {
      conn.status = status;
      conn.retryInMs = d.retryInMs;
      schedule();
    },
  },
  WebSocket,
  { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>) },
);

// relative times ("3 s ago") age even without events
setInterval(schedule, 1000);
document.addEventListener('visibilitychange', schedule);
schedule();
