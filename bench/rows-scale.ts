import type { Results } from './report.js';
import type { World } from './setup.js';
import type { Options } from './run.js';

export async function runScale(_world: World, _options: Options, _results: Results, _log: (s: string) => void): Promise<void> {
  throw new Error('--scale: not yet');
}
