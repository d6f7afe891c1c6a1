import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Context } from '../services/context.js';
import { addDestination, describeDestination } from '../services/destinations.js';
import { describeJob } from '../services/jobs.js';
import { describeSnapshot } from '../services/snapshots.js';
import { createLogger } from '../util/log.js';
import { noteBoundSocket, removeBoundSocket, type BoundSocket } from '../util/socket-file.js';

const VIEWS = fileURLToPath(new URL('../../../views', import.meta.url));

/** On a fresh install the product works at once: a Local destination under the data directory. */
async function ensureDefaultDestination(ctx: Context): Promise<void> {
  if (ctx.store.destinations.list().length > 0) return;
  const dir = path.join(ctx.dataDir, 'backups');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  await addDestination(ctx, { name: 'local', type: 'local', path: dir });
}

/**
 * `trusted`: the root-only Unix socket, where whoever connects is root. The HTTP port on
 * 127.0.0.1 is reachable by every local user (account holders with SSH included), so
 * there every page needs a session opened by a login URL.
 */
export async function createApp(ctx: Context, trusted: boolean): Promise<express.Express> {
  const app = express();
  app.set('view engine', 'ejs');
  app.set('views', VIEWS);
  // The views are installed files: compiled once, not at every page (express caches only with NODE_ENV=production).
  app.set('view cache', true);
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    res.set({ 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'SAMEORIGIN', 'Referrer-Policy': 'no-referrer' });
    next();
  });
  // First on the root socket: a request that came through WHM's page is decided by the bridge
  // (the WHM user's role, pages only), so it never reaches the API, where the socket means root.
  if (trusted) app.use(await (await import('./bridge.js')).rootBridge(ctx));
  app.get('/api/v1/health', (_req, res) => { res.json({ ok: true }); });
  // Before the pages: the API answers with JSON and a token, never with a session cookie.
  const { apiRoutes } = await import('./api/routes.js');
  app.use('/api/v1', apiRoutes(ctx, trusted));
  if (!trusted) {
    const { mountWebPages } = await import('./web.js');
    await mountWebPages(app, ctx);
    return app;
  }
  app.get('/', async (_req, res) => {
    const destinations = await Promise.all(ctx.store.destinations.list().map((d) => describeDestination(ctx, d)));
    res.render('dashboard', {
      destinations, jobs: ctx.store.jobs.list().map((j) => describeJob(ctx, j)),
      snapshots: ctx.store.snapshots.list().slice(0, 50).map((s) => describeSnapshot(ctx, s)),
    });
  });
  return app;
}

/**
 * The proof channel of the panel pages that run as an account (bridge.ts); the daemon runs on
 * without it. `bound` gets the socket file once it listens, to be removed at a clean exit.
 */
async function listenForPanelPages(ctx: Context, log: ReturnType<typeof createLogger>, bound: (s: BoundSocket | null) => void): Promise<void> {
  try {
    const { bridgeDirOf, prepareBridgeDir, proofBridgeServer } = await import('./bridge.js');
    const { socket } = prepareBridgeDir(bridgeDirOf(ctx.config));
    fs.rmSync(socket, { force: true });
    const server = (await proofBridgeServer(ctx, (msg, fields) => log.error(fields ?? {}, msg))).listen(socket, () => {
      fs.chmodSync(socket, 0o666);
      bound(noteBoundSocket(socket));
    });
    server.on('error', (err) => log.error({ socket, err: err.message }, 'panel bridge socket not available'));
  } catch (err) {
    log.error({ err: (err as Error).message }, 'panel bridge socket not available');
  }
}

/** The daemon: a root-only Unix socket for panel bridges and the CLI, and HTTP on 127.0.0.1 for standalone mode. */
export async function serve(ctx: Context, portOption?: number): Promise<void> {
  const log = createLogger(ctx.config.logLevel);
  await ensureDefaultDestination(ctx);
  const port = portOption ?? ctx.config.httpPort;
  const socketPath = ctx.config.socketPath;
  // Everything loaded before the first listen: the first requests are not slowed by the rest of start-up.
  const rootApp = await createApp(ctx, true);
  const webApp = port > 0 ? await createApp(ctx, false) : null;
  const { Scheduler } = await import('../schedule/scheduler.js');
  const { realClock } = await import('../schedule/clock.js');
  const { BinlogShipper } = await import('../schedule/binlog-shipper.js');
  const { startDailyJobs } = await import('../notify/daily.js');
  /** The socket files bound here: removed at a clean exit (removeBoundSocket says when it is safe). */
  const sockets: (BoundSocket | null)[] = [];
  /** What has been started, stopped at a clean exit in the reverse order. */
  const started: (() => void)[] = [];
  const stop = (): void => {
    for (const end of started.reverse()) end();
    ctx.close();
    // No socket left behind for a panel page or the CLI to find while nothing listens.
    for (const s of sockets) removeBoundSocket(s);
    process.exit(0);
  };
  // Before the first socket is bound: a SIGTERM during the start (its default ends the process
  // at once) would leave the socket files behind.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
    fs.rmSync(socketPath, { force: true });
    const sock = rootApp.listen(socketPath, () => {
      fs.chmodSync(socketPath, 0o600);
      sockets.push(noteBoundSocket(socketPath));
    });
    sock.on('error', (err) => log.error({ socketPath, err: err.message }, 'socket not available'));
  } catch (err) {
    log.error({ socketPath, err: (err as Error).message }, 'socket not available');
  }
  await listenForPanelPages(ctx, log, (s) => sockets.push(s));
  if (webApp) {
    const http = webApp.listen(port, '127.0.0.1', () => {
      process.stdout.write(`tidemark: listening on http://127.0.0.1:${port}/ (data in ${ctx.dataDir})\n`);
      log.info({ port, dataDir: ctx.dataDir }, 'daemon started');
    });
    http.on('error', (err) => { log.fatal({ port, err: err.message }, 'cannot listen'); process.exit(1); });
  }
  const scheduler = new Scheduler(ctx, await realClock(), log);
  scheduler.start();
  started.push(() => scheduler.stop());
  const shipper = new BinlogShipper(ctx, await realClock(), log);
  shipper.start();
  started.push(() => shipper.stop());
  started.push(startDailyJobs(ctx, log));
  // config.json edited by hand: read again without a restart (a bad file keeps the config in use).
  process.on('SIGHUP', () => {
    void import('../services/settings.js').then((m) => m.reloadConfig(ctx)).then(
      () => log.info({}, 'config.json read again'), (err: Error) => log.error({ err: err.message }, 'config.json not read again'));
  });
}
