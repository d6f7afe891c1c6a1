import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import i18next, { type i18n } from 'i18next';
import { LanguageDetector } from 'i18next-http-middleware';

export const LOCALE_DIR = fileURLToPath(new URL('../../../views/locales', import.meta.url));

/** The languages of the pages, each named in its own language for the switch. */
export const LOCALES = { en: 'English', de: 'Deutsch', fr: 'Français' } as const;
export type Locale = keyof typeof LOCALES;
export const LANGUAGE_COOKIE = 'tidemark_lang';

export const isLocale = (v: unknown): v is Locale => typeof v === 'string' && Object.hasOwn(LOCALES, v);

export function readLocale(lng: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(`${LOCALE_DIR}/${lng}.json`, 'utf8')) as Record<string, unknown>;
}

/**
 * One i18next instance for the web app. The language comes from the language cookie
 * (set by the switch), else from the browser's Accept-Language, else English.
 */
export async function createI18n(): Promise<i18n> {
  const instance = i18next.createInstance();
  const resources = Object.fromEntries(Object.keys(LOCALES).map((lng) => [lng, { translation: readLocale(lng) }]));
  await instance.use(LanguageDetector).init({
    resources,
    fallbackLng: 'en',
    supportedLngs: Object.keys(LOCALES),
    nonExplicitSupportedLngs: true,
    load: 'languageOnly',
    // EJS escapes every <%= %> output; escaping here as well would show entities.
    interpolation: { escapeValue: false },
    detection: { order: ['cookie', 'header'], lookupCookie: LANGUAGE_COOKIE, caches: false },
    returnNull: false,
  });
  return instance;
}
