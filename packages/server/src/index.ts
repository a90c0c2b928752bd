export { startServer, type RunningServer } from './server.ts';
export type { ServerOptions } from './options.ts';
export { parseDuration, parseListen } from './options.ts';
export { systemClock, type Clock } from './clock.ts';
export { createLogger, silentLogger, type Logger } from './log.ts';
export { openDb } from './store/db.ts';
export { createToken } from './store/tokens.ts';
export { Scheduler } from './scheduler/scheduler.ts';
export { nextAfter, normalizeSchedule, validateTimezone, PERIODS } from './scheduler/cron.ts';
