import type { Command } from 'commander';
import { binlogStatus, markBinlogDestination, shipBinlogsNow } from '../../services/point-in-time.js';
import { humanBytes, printJson } from '../output.js';
import { action } from '../common.js';

/** binlog: the MySQL server's binary logs, shipped to the provider's destinations for point-in-time restores. */
export function register(program: Command): void {
  const binlog = program.command('binlog').description('binary-log shipping for point-in-time database restores (provider only)');

  binlog.command('status').description('whether the server logs, and what each marked destination holds')
    .action(action(async (ctx, json) => {
      const r = await binlogStatus(ctx);
      if (json) { printJson(r); return; }
      if (r.serverError) process.stdout.write(`MySQL server: ${r.serverError}\n`);
      else if (r.server && !r.server.logBin) process.stdout.write(`binary logging: OFF\n${r.server.advice}\n`);
      else if (r.server) {
        process.stdout.write(`binary logging: on (${r.server.format}), ${r.server.files.length} logs on the server, shipped every ${r.intervalMinutes} min\n`);
        if (r.server.advice) process.stdout.write(`${r.server.advice}\n`);
      }
      if (r.destinations.length === 0) process.stdout.write('no destination is marked for binary logs (tidemark binlog destination NAME --on)\n');
      for (const d of r.destinations) {
        process.stdout.write(`${d.name}: ${d.files} logs, ${humanBytes(d.bytes)}${d.first ? `, ${d.first} to ${d.last}` : ''}\n`);
      }
    }));

  binlog.command('ship').description('flush the current log and copy the closed logs that are new (the daemon does it every binlogs.intervalMinutes)')
    .action(action(async (ctx, json) => {
      const r = await shipBinlogsNow(ctx);
      if (json) printJson(r);
      else {
        if (!r.logBin) process.stdout.write(`binary logging: OFF, nothing shipped\n${r.advice}\n`);
        else if (r.destinations.length === 0) process.stdout.write('no destination is marked for binary logs (tidemark binlog destination NAME --on)\n');
        for (const s of r.shipped) process.stdout.write(`shipped ${s.file} to ${s.destination} (${humanBytes(s.size)})\n`);
        for (const s of r.removed) process.stdout.write(`removed ${s.file} from ${s.destination} (no kept dump needs it)\n`);
        for (const g of r.gaps) process.stderr.write(`gap: ${g}\n`);
        for (const f of r.failed) process.stderr.write(`failed: ${f.destination}: ${f.error}\n`);
      }
      if (r.failed.length) process.exitCode = 1;
    }));

  binlog.command('destination').description('mark a provider destination to receive the binary logs (--on) or not (--off)')
    .argument('<name>')
    .option('--on').option('--off')
    .action(action(async (ctx, json, name: string, opts: { on?: boolean; off?: boolean }) => {
      const { UserError } = await import('../../services/context.js');
      if (Boolean(opts.on) === Boolean(opts.off)) throw new UserError('give --on or --off', 'invalid-input');
      const r = markBinlogDestination(ctx, name, Boolean(opts.on));
      if (json) printJson(r); else process.stdout.write(`${r.destination}: binary logs ${r.binlogs ? 'shipped here' : 'no longer shipped here'}\n`);
    }));
}
