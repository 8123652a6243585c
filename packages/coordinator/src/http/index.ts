export * from './auth.js';
export * from './events.js';
export * from './handler.js';
export * from './metrics.js';
export { defaultDashboardDir } from './static.js';
export * from './synthetic-run.js';
export * from './observer-server.js';
export * from './mount.js';
