/**
 * A node's options, each declared once: its kind, default, range and unit. The runtime reads a
 * node's configuration through readOptions(); the build generates the editor's `defaults` and
 * validators, the option lists of the help and docs/options.md from the same table
 * (scripts/build.js), so what the editor offers is what the runtime accepts. Labels and help lines
 * are the locales' (src/locales/<lang>/<type>.json: label.<key>, help.<key>: one short line).
 */
import { CHECKS, type CheckName } from './checks';
import { withWords, type Words } from './text';

interface Common {
  /** The option's name in runtime errors ("Capacity must be ..."): the English label. */
  name: string;
  /**
   * What docs/options.md says beyond the help line (English): the help beside the dialog keeps one
   * short line per option, so that the sidebar stays short; the reference says the rest.
   */
  doc?: string;
  /** Only checked, and only read, while another option has one of these values (e.g. columns in existing mode). */
  when?: { option: string; is: readonly (string | boolean)[] };
}

export interface NumberOption extends Common {
  kind: 'integer' | 'number';
  default: number;
  min: number;
  max: number;
  /** The unit of the value as stored and shown (e.g. 'events', 's', 'ms', 'MB'). */
  unit: string;
  /** What 0 means, when 0 is allowed and special ("off", "the pool size"). */
  zero?: string;
}

export interface FlagOption extends Common {
  kind: 'flag';
  default: boolean;
}

export interface ChoiceOption<C extends string = string> extends Common {
  kind: 'choice';
  default: C;
  choices: readonly C[];
}

export interface TextOption extends Common {
  kind: 'text';
  default: string;
  /** Empty is refused (else empty means the default). */
  required?: boolean;
  /** Empty means off or none (kept as ''); missing is the default (usually '', a column name for a table's columns). */
  optional?: boolean;
  /** Needed (not empty) while another option has one of these values (e.g. a CA file for verify-ca), and why. */
  requiredWhen?: { option: string; is: readonly (string | boolean)[]; reason: string };
  check?: CheckName;
}

export type Option = NumberOption | FlagOption | ChoiceOption | TextOption;
export type OptionTable = Record<string, Option>;

type ValueOf<O extends Option> = O extends NumberOption ? number : O extends FlagOption ? boolean : O extends ChoiceOption<infer C> ? C : string;
export type OptionValues<T extends OptionTable> = { [K in keyof T]: ValueOf<T[K]> };

/** A value that names an environment variable: Node-RED substitutes it before the node starts. */
const ENV = /^\$\{[^}]+\}$/;

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

/** The text a runtime error shows for what the flow holds. */
function shown(value: unknown): string {
  try {
    return String(value);
  } catch {
    return typeof value;
  }
}

/**
 * Reads one option of a node's configuration; throws a RangeError that names the option, with its
 * words (the option's label and the reason in the node's catalog: see Words). `key`: the option's
 * key in its table, for its label.
 */
export function readOption(option: Option, value: unknown, key?: string): number | boolean | string {
  const name: string | Words = key === undefined ? option.name : { key: `.label.${key}`, text: option.name };
  const refuse = (message: string, wordsKey: string, params: Words['params']): RangeError => withWords(new RangeError(message), { key: `.validation.${wordsKey}`, params: { option: name, ...params } });
  switch (option.kind) {
    case 'integer':
    case 'number': {
      if (isEmpty(value)) return option.default;
      const n = typeof value === 'number' ? value : Number(String(value).trim());
      const whole = option.kind === 'integer';
      if (!(whole ? Number.isSafeInteger(n) : Number.isFinite(n)) || n < option.min || n > option.max) {
        const range: Words = { key: `.validation.${whole ? 'whole' : 'number'}`, params: { min: option.min, max: option.max, unit: { key: `.units.${option.unit}`, text: option.unit } } };
        throw refuse(`${option.name} must be a ${whole ? 'whole number' : 'number'} from ${option.min} to ${option.max}, got "${shown(value)}"`, 'mustBe', { reason: range, value: shown(value) });
      }
      return n;
    }
    case 'flag':
      if (isEmpty(value)) return option.default;
      return value === true || value === 'true';
    case 'choice':
      if (isEmpty(value)) return option.default;
      if ((option.choices as readonly unknown[]).includes(value)) return value as string;
      throw refuse(`${option.name} must be one of ${option.choices.join(', ')}, got "${shown(value)}"`, 'mustBe', { reason: { key: '.validation.choice', params: { choices: option.choices.join(', ') } }, value: shown(value) });
    case 'text': {
      // Missing (a flow written by hand, or older than the option) is the default; an empty field
      // is empty where that means something (optional), else the default too.
      if (value === undefined || value === null) return option.default;
      const text = typeof value === 'string' ? value.trim() : shown(value);
      if (text === '') {
        if (option.required) throw refuse(`${option.name} is needed`, 'isNeeded', {});
        return option.optional ? '' : option.default;
      }
      const verdict = option.check === undefined ? true : CHECKS[option.check](text);
      if (verdict !== true) throw refuse(`${option.name}: ${verdict.text}`, 'checked', { reason: { key: `.validation.${verdict.key}`, params: verdict.params, text: verdict.text } });
      return text;
    }
  }
}

/**
 * Reads a node's configuration (`def`, as Node-RED hands it to the constructor) through its
 * table: every option with its default, checked against its range. An option whose `when` does
 * not hold is its default, unchecked.
 */
export function readOptions<T extends OptionTable>(table: T, def: Record<string, unknown>): OptionValues<T> {
  const out: Record<string, unknown> = {};
  const holds = (condition: { option: string; is: readonly (string | boolean)[] }): boolean => condition.is.includes(readOption(table[condition.option], def[condition.option], condition.option) as string | boolean);
  for (const [key, option] of Object.entries(table)) {
    if (option.when !== undefined && !holds(option.when)) {
      out[key] = option.default;
      continue;
    }
    out[key] = readOption(option, def[key], key);
    if (option.kind === 'text' && option.requiredWhen !== undefined && out[key] === '' && holds(option.requiredWhen)) {
      throw withWords(new RangeError(option.requiredWhen.reason), { key: `.validation.requiredWhen.${key}`, text: option.requiredWhen.reason });
    }
  }
  return out as OptionValues<T>;
}

/** The range of a number option in words, for validators, help and docs ("1 to 50,000,000 events"). */
export function rangeText(option: NumberOption): string {
  const n = (x: number): string => x.toLocaleString('en-US', { maximumFractionDigits: 6 });
  return `${n(option.min)} to ${n(option.max)} ${option.unit}${option.zero ? `; 0 = ${option.zero}` : ''}`;
}

/** The default in words, for help and docs ("100,000 events", "off", "drop-oldest"). */
export function defaultText(option: Option): string {
  switch (option.kind) {
    case 'integer':
    case 'number':
      return option.default === 0 && option.zero ? `0 (${option.zero})` : `${option.default.toLocaleString('en-US', { maximumFractionDigits: 6 })} ${option.unit}`;
    case 'flag':
      return option.default ? 'on' : 'off';
    default:
      return option.default === '' ? 'empty' : String(option.default);
  }
}

/** Whether `value` is something Node-RED substitutes (${VAR}): the editor cannot check it. */
export function isEnvReference(value: unknown): boolean {
  return typeof value === 'string' && ENV.test(value.trim());
}
