import express from 'express';
import { actorOf } from '../session.js';
import { cancelTask } from '../../services/tasks.js';
import { UserError } from '../../services/context.js';
import { refusalOf } from '../web-errors.js';
import { ProviderScope, taskJson } from './provider-scope.js';
import { scopeOf, type ProviderState } from './state.js';

/** The queue of tasks with live progress (server-sent events), and each task with its log. */
export function queueRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();

  r.get('/', async (_req, res) => {
    res.render('admin/queue', { tasks: (await scopeOf(st, res).tasks(100)).map((t) => taskJson(ctx, t)) });
  });

  /** Server-sent events: the task list whenever it changes (checked every second). */
  r.get('/events', (req, res) => {
    res.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    const actor = actorOf(res);
    let last = '';
    let busy = false;
    const send = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        // A new scope each time: a reseller's accounts may change while the stream is open.
        const doc = JSON.stringify((await new ProviderScope(ctx, actor).tasks(100)).map((t) => taskJson(ctx, t)));
        if (doc !== last) { res.write(`event: tasks\ndata: ${doc}\n\n`); last = doc; } else res.write(': still here\n\n');
      } finally {
        busy = false;
      }
    };
    const sessionId = String(res.locals.sessionId);
    const opened = Date.now();
    const timer = setInterval(() => {
      // A stream is no use of the session: it ends with the session (or after a while; the browser reconnects).
      if (!ctx.store.sessions.isLive(sessionId) || Date.now() - opened > 10 * 60_000) { clearInterval(timer); res.end(); return; }
      void send().catch(() => { clearInterval(timer); res.end(); });
    }, 1000);
    void send();
    req.on('close', () => clearInterval(timer));
  });

  r.get('/:id', async (req, res) => {
    const t = await scopeOf(st, res).task(Number(req.params.id));
    res.render('admin/task', { task: taskJson(ctx, t), result: t.result, params: t.params, logs: ctx.store.tasks.logs(t.id, { provider: actorOf(res).role === 'admin' }).slice(-500) });
  });

  r.post('/:id/cancel', async (req, res) => {
    const t = await scopeOf(st, res).task(Number(req.params.id));
    try {
      await cancelTask(ctx, t.id, actorOf(res));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      throw refusalOf(err);
    }
    res.redirect(303, `/admin/queue/${t.id}`);
  });

  r.get('/:id/status', async (req, res) => {
    const t = await scopeOf(st, res).task(Number(req.params.id));
    const j = taskJson(ctx, t);
    res.json({ ...j, finished: !j.active });
  });

  return r;
}
