/** Which panel's accounts Tidemark backs up, and the adapter that reads them. */
import { prefixed, type Config } from '../config.js';
import { CpanelAdapter } from './cpanel.js';
import { DirectAdminAdapter } from './directadmin.js';
import { exists, type PanelDeps } from './files.js';
import { StandaloneAdapter } from './standalone.js';
import type { PanelAdapter } from './types.js';

export type { PanelDeps } from './files.js';
export type PanelName = PanelAdapter['name'];

const CPANEL_MARKERS = ['/usr/local/cpanel/cpanel', '/var/cpanel/users'];
const DIRECTADMIN_MARKERS = ['/usr/local/directadmin/directadmin', '/usr/local/directadmin/data/users'];

/**
 * config.panel when it is not 'auto'; else cPanel when its binary or /var/cpanel/users exists,
 * then DirectAdmin when its binary or data/users exists, else standalone (paths under rootPrefix).
 */
export function detectPanel(config: Pick<Config, 'panel' | 'rootPrefix'>): PanelName {
  if (config.panel !== 'auto') return config.panel;
  if (CPANEL_MARKERS.some((p) => exists(prefixed(config, p)))) return 'cpanel';
  if (DIRECTADMIN_MARKERS.some((p) => exists(prefixed(config, p)))) return 'directadmin';
  return 'standalone';
}

/** The adapter of the detected (or configured) panel. Nothing is read until a method is called. */
export function createPanelAdapter(config: Config, deps: PanelDeps): PanelAdapter {
  switch (detectPanel(config)) {
    case 'cpanel': return new CpanelAdapter(config, deps);
    case 'directadmin': return new DirectAdminAdapter(config, deps);
    case 'standalone': return new StandaloneAdapter(config, deps);
  }
}
