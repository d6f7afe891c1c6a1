import type { Command } from 'commander';
import { UserError } from '../../services/context.js';
import { cancelTask, describeTask, getTask, listTasks, taskLog, waitForEnd } from '../../services/tasks.js';
import { printJson, printRecord, printTable, progressText } from '../output.js';
import { wholeNumber } from '../option-values.js';
import { actionAs } from '../common.js';

/** task: the queue and its history. */
export function register(program: Command): void {
  const task = program.command('task').description('the queue: backups and restores, waiting or running, and their history');
  task.command('list')
    .option('--active', 'only queued and running tasks, in the order the queue takes them')
    .option('--limit <n>', 'at most this many', wholeNumber(1, 1_000_000), 50)
    .action(actionAs(async (ctx, json, who, opts: { active?: boolean; limit: number }) => {
      if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) throw new UserError('--limit: a positive whole number', 'invalid-input');
      const tasks = (await listTasks(ctx, who.actor, { activeOnly: Boolean(opts.active), limit: opts.limit })).map(describeTask);
      if (json) printJson(tasks);
      else printTable(tasks.map((t) => ({ ...t, progress: progressText(t.progress as Record<string, unknown>) })), ['id', 'type', 'status', 'priority', 'account', 'progress', 'createdAt', 'error']);
    }));
  task.command('show').argument('<id>', 'task id', wholeNumber(1, Number.MAX_SAFE_INTEGER)).action(actionAs(async (ctx, json, who, id: number) => {
    const t = await getTask(ctx, id, who.actor);
    const logs = taskLog(ctx, t, who.actor);
    if (json) printJson({ ...describeTask(t), log: logs });
    else {
      printRecord(describeTask(t));
      for (const l of logs) process.stdout.write(`${l.at}  ${l.level.padEnd(5)}  ${l.message}\n`);
    }
  }));
  task.command('cancel').argument('<id>', 'task id', wholeNumber(1, Number.MAX_SAFE_INTEGER))
    .description('a queued task never starts; a running backup stops and leaves no snapshot')
    .option('--wait', 'wait until the task has ended')
    .action(actionAs(async (ctx, json, who, id: number, opts: { wait?: boolean }) => {
      const outcome = await cancelTask(ctx, id, who.actor);
      const t = opts.wait ? await waitForEnd(ctx, id) : await getTask(ctx, id, who.actor);
      if (json) printJson({ task: id, outcome, status: t.status });
      else process.stdout.write(`task ${id}: ${outcome === 'cancelled' ? 'cancelled' : opts.wait ? `stopped (${t.status})` : 'stopping'}\n`);
    }));
}
