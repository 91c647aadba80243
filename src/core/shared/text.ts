/**
 * Words a person reads (a badge, a log line) come in the user's language: core code names them by
 * a message key and parameters, and the node turns those into text with Node-RED's runtime i18n
 * (RED._, src/nodes/i18n.ts). Keys live in src/locales/<lang>/<type>.json under "status" and
 * "log"; parameters are written __name__ in the text. Counter names and stats stay English: an API.
 */
export type TextParams = Record<string, string | number>;

export type Translate = (key: string, params?: TextParams) => string;
