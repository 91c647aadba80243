/**
 * Words a person reads (a badge, a log line, an error) come in the user's language: core code names
 * them by a message key and parameters, and the node turns those into text with Node-RED's runtime
 * i18n (RED._, src/nodes/i18n.ts). Keys live in src/locales/<lang>/<type>.json under "status",
 * "log", "notice" and "config", and in the node's own section (<type>.validation, <type>.label);
 * parameters are written __name__ in the text. Counter names, stats and the English `message` of
 * an error or a table notice stay English: an API.
 */
export type TextParams = Record<string, string | number>;

export type Translate = (key: string, params?: TextParams) => string;

/**
 * A sentence named by its catalog key, for text that core code also needs in English (an Error's
 * message, a notice in the stats): the English stays the message, the node says the words in the
 * user's language. A parameter may itself be words (a reason inside a sentence). A key starting with
 * '.' is in the node's own section of its catalog (`.validation.whole` is
 * `timescale-sink.validation.whole`), where the editor finds the same text.
 */
export interface Words {
  key: string;
  /** Words in a list are said one after the other, separated by '; '. */
  params?: Record<string, string | number | Words | Words[]>;
  /** The English, when the catalog may lack the key (a unit of a new option). */
  text?: string;
}

/** An Error (its message English) that names its words, so a node can say it in the user's language. */
export function withWords<E extends Error>(err: E, words: Words): E & { words: Words } {
  return Object.assign(err, { words });
}

/** Words in the language of `t`, each parameter that is words said first. */
export function say(words: Words, t: Translate): string {
  const params: TextParams = {};
  for (const [name, value] of Object.entries(words.params ?? {})) {
    params[name] = Array.isArray(value) ? value.map((part) => say(part, t)).join('; ') : typeof value === 'object' ? say(value, t) : value;
  }
  const text = t(words.key, params);
  return text === words.key && words.text !== undefined ? words.text : text;
}

/** The words an error names (withWords, a WriterConfigError), if any. */
export function wordsOf(err: unknown): Words | undefined {
  const words = (err as { words?: unknown } | null | undefined)?.words;
  return words !== null && typeof words === 'object' && typeof (words as Words).key === 'string' ? (words as Words) : undefined;
}

/** An error's text in the language of `t`: its words when it names them, else its message. */
export function errorText(err: unknown, t: Translate): string {
  const words = wordsOf(err);
  if (words) return say(words, t);
  return err instanceof Error ? err.message : String(err);
}
