import type { Results } from './report.js';
import type { World } from './setup.js';

export async function runCatalog(_world: World, _results: Results, _log: (s: string) => void): Promise<void> {
  throw new Error('--catalog: not yet');
}
