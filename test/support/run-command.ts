import { spawn } from 'node:child_process';

export interface RunResult { code: number; stdout: string; stderr: string }

export interface RunOptions { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }

/**
 * Runs a command to its end and collects its output; never rejects: a command that cannot
 * start is code -1, one killed at `timeoutMs` (default 30 s) or by a signal is 128.
 */
export function runCommand(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(o.env ? { env: o.env } : {}) });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, stdout, stderr: stderr + e.message }); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    child.stdin.on('error', () => { /* the command did not read its input */ });
    child.stdin.end(o.input ?? '');
  });
}
