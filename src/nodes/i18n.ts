import * as fs from 'fs';
import * as path from 'path';
import type { TextParams, Translate } from '../core/shared/text';
import type { RedAPI } from './red';

/**
 * Where the message catalogs are: nodes/locales when built (beside nodes/<type>.js, where
 * Node-RED looks for them), src/locales when the sources run directly (tests under ts-node).
 */
function localesDir(): string {
  for (const dir of [path.join(__dirname, '..', '..', 'locales'), path.join(__dirname, '..', 'locales')]) {
    if (fs.existsSync(path.join(dir, 'en-US'))) return dir;
  }
  throw new Error(`no locales folder beside ${__dirname}`);
}

const catalogs = new Map<string, Record<string, unknown>>();

/** The messages of one node type in one language, as Node-RED reads them (locales/<lang>/<type>.json). */
export function catalog(type: string, lang = 'en-US'): Record<string, unknown> {
  const id = `${lang}/${type}`;
  let messages = catalogs.get(id);
  if (messages === undefined) {
    messages = JSON.parse(fs.readFileSync(path.join(localesDir(), lang, `${type}.json`), 'utf8')) as Record<string, unknown>;
    catalogs.set(id, messages);
  }
  return messages;
}

/** A key's text in a catalog with its __parameters__ filled in, as Node-RED's i18next does; undefined when missing. */
export function lookUp(messages: Record<string, unknown>, key: string, params: TextParams = {}): string | undefined {
  let at: unknown = messages;
  for (const part of key.split('.')) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined;
  if (typeof at !== 'string') return undefined;
  return at.replace(/__([A-Za-z0-9_]+)__/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** A key as the catalog holds it: '.validation.whole' is in the node's own section (see Words). */
function fullKey(type: string, key: string): string {
  return key.startsWith('.') ? `${type}${key}` : key;
}

/** English from the package's own en-US catalog (tests, and a runtime that has no catalog loaded). */
export function english(type: string): Translate {
  return (key, params) => lookUp(catalog(type), fullKey(type, key), params) ?? key;
}

/**
 * The node's texts in the runtime's language (settings.lang, else LC_ALL / LC_MESSAGES / LANG).
 * RED._ is bound to this node file's catalog; it answers with the key itself when it has no
 * catalog (node-red-node-test-helper's RED._ is the identity): then English.
 */
export function translator(RED: RedAPI, type: string): Translate {
  const fallback = english(type);
  return (key, params) => {
    const full = fullKey(type, key);
    const text = typeof RED._ === 'function' ? RED._(full, params) : full;
    return text === full ? fallback(key, params) : text;
  };
}
