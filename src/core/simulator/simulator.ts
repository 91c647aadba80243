/**
 * The generator behind telemetry-simulator: deterministic telemetry from a seeded PRNG, so a test
 * (or a benchmark run twice) sees exactly the same events. No Node-RED here: simulation.ts paces it
 * (pacer.ts) and sends what it returns.
 *
 * Sources have a fixed kind, apportioned from the mix (10 sources with mix 80/10/10 gives 8
 * sensors, 1 camera and 1 press counter). Each message picks a kind by weight, then the next source of that
 * kind round-robin, so the event mix follows the weights while every source keeps one kind.
 *
 * Message shapes (chosen so timescale-sink maps them without settings):
 * - one event per message:
 *     {topic: '<prefix>/<source>', kind, payload: {value, kind, time, seq, ...extra}}
 * - N events per message (all from the one source named by the topic):
 *     {topic: '<prefix>/<source>', kind, payload: [{source: topic, value, kind, time, seq, ...extra}, ...]}
 * `time` is epoch ms; `seq` counts 1, 2, 3, ... per source (telemetry-buffer's msg.seq takes
 * precedence in the sink; without a buffer it keeps (source, time, seq) unique). Extras go to the
 * sink's jsonb column: samples carry `unit`, detections `label` and `confidence` (value 1 per
 * detection, so SUM(value) counts them), counters none (value is the cycle count).
 */
import { withWords } from '../shared/text';

export { Pacer, type PacerOptions } from './pacer';

export const EVENT_KINDS = ['sample', 'detection', 'counter'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
export type KindMix = Record<EventKind, number>;

export const DEFAULT_MIX: Readonly<KindMix> = { sample: 80, detection: 10, counter: 10 };

export interface SimulatorOptions {
  /** Number of sources. Default 10. */
  sources?: number;
  /** Relative weights of the kinds. Default {sample: 80, detection: 10, counter: 10}. */
  mix?: Partial<KindMix>;
  /** 1: payload is one event object; N > 1: payload is an array of N events. Default 1. */
  eventsPerMessage?: number;
  /** Topics are `<topicPrefix>/<source name>`. Default 'sim/line1'. */
  topicPrefix?: string;
  /** PRNG seed (any 32-bit integer). Default 1. */
  seed?: number;
}

export interface SimEvent {
  /** Only in array payloads: the full topic of the source. */
  source?: string;
  value: number;
  kind: EventKind;
  time: number;
  seq: number;
  unit?: string;
  label?: string;
  confidence?: number;
}

export interface SimMessage {
  _msgid?: string;
  topic: string;
  kind: EventKind;
  payload: SimEvent | SimEvent[];
}

export interface SimulatorCounts {
  messages: number;
  events: number;
  byKind: KindMix;
}

const LABELS = ['person', 'forklift', 'pallet', 'box', 'helmet', 'no-helmet'] as const;

/** mulberry32: tiny, fast, good enough for telemetry noise, and identical on every platform. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Source {
  topic: string;
  kind: EventKind;
  unit: string | undefined;
  /** Sample: the mean the value reverts to, the current value and the noise step. */
  mean: number;
  current: number;
  step: number;
  /** Counter: the last cycle count. */
  count: number;
  seq: number;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * Splits `total` sources over the kinds in proportion to their weights (largest remainder), then
 * makes sure every kind with a weight above 0 has at least one, taken from the kind with the most.
 */
export function apportionSources(total: number, mix: KindMix): Record<EventKind, number> {
  const active = EVENT_KINDS.filter((k) => mix[k] > 0);
  if (active.length === 0) throw withWords(new RangeError('Mix must give at least one kind a weight above 0'), { key: '.validation.mixZero' });
  if (total < active.length) {
    throw withWords(new RangeError(`Sources must be at least ${active.length} for this mix (one per kind), got ${total}`), { key: '.validation.mixSources', params: { least: active.length, value: total } });
  }
  const out: Record<EventKind, number> = { sample: 0, detection: 0, counter: 0 };
  const sum = active.reduce((s, k) => s + mix[k], 0);
  let given = 0;
  const remainders = active.map((k) => {
    const exact = (total * mix[k]) / sum;
    out[k] = Math.floor(exact);
    given += out[k];
    return { k, r: exact - out[k] };
  });
  remainders.sort((a, b) => b.r - a.r || EVENT_KINDS.indexOf(a.k) - EVENT_KINDS.indexOf(b.k));
  for (let i = 0; given < total; i++, given++) out[remainders[i].k]++;
  for (const k of active) {
    if (out[k] > 0) continue;
    const richest = active.reduce((a, b) => (out[b] > out[a] ? b : a));
    out[richest]--;
    out[k]++;
  }
  return out;
}

export class TelemetryGenerator {
  readonly eventsPerMessage: number;
  readonly sources: readonly { topic: string; kind: EventKind }[];
  private readonly options: Required<Omit<SimulatorOptions, 'mix'>> & { mix: KindMix };
  private random!: () => number;
  private state!: Source[];
  private byKind!: Source[][];
  private nextOfKind!: number[];
  /** Cumulative weights over EVENT_KINDS, and their total. */
  private readonly cumulative: number[];
  private readonly totalWeight: number;
  private counts!: SimulatorCounts;

  constructor(options: SimulatorOptions = {}) {
    const mix: KindMix = { ...DEFAULT_MIX, ...(options.mix ?? {}) };
    for (const k of EVENT_KINDS) {
      if (!Number.isFinite(mix[k]) || mix[k] < 0) throw new RangeError(`Mix weight for ${k} must be a number of 0 or more, got "${String(mix[k])}"`);
    }
    const sources = options.sources ?? 10;
    if (!Number.isSafeInteger(sources) || sources < 1) throw new RangeError(`Sources must be a whole number of 1 or more, got "${String(sources)}"`);
    const eventsPerMessage = options.eventsPerMessage ?? 1;
    if (!Number.isSafeInteger(eventsPerMessage) || eventsPerMessage < 1) throw new RangeError(`Events per message must be a whole number of 1 or more, got "${String(eventsPerMessage)}"`);
    this.options = { sources, mix, eventsPerMessage, topicPrefix: options.topicPrefix ?? 'sim/line1', seed: options.seed ?? 1 };
    this.eventsPerMessage = eventsPerMessage;
    let acc = 0;
    this.cumulative = EVENT_KINDS.map((k) => (acc += mix[k]));
    this.totalWeight = acc;
    this.reset();
    this.sources = this.state.map((s) => ({ topic: s.topic, kind: s.kind }));
  }

  /** Back to the state right after construction: same seed, same sources, counters at zero. */
  reset(): void {
    const { sources, mix, topicPrefix, seed } = this.options;
    this.random = mulberry32(seed);
    const perKind = apportionSources(sources, mix);
    const width = Math.max(2, String(sources).length);
    const prefix = topicPrefix === '' ? '' : topicPrefix.endsWith('/') ? topicPrefix : `${topicPrefix}/`;
    this.state = [];
    this.byKind = EVENT_KINDS.map(() => []);
    let n = 0;
    EVENT_KINDS.forEach((kind, ki) => {
      for (let i = 0; i < perKind[kind]; i++) {
        n++;
        const vibration = kind === 'sample' && i % 2 === 1;
        const stem = kind === 'sample' ? (vibration ? 'vib' : 'temp') : kind === 'detection' ? 'cam' : 'press';
        const mean = kind !== 'sample' ? 0 : vibration ? round2(2 + this.random() * 3) : round2(20 + this.random() * 60);
        const source: Source = {
          topic: `${prefix}${stem}-${String(n).padStart(width, '0')}`,
          kind,
          unit: kind !== 'sample' ? undefined : vibration ? 'mm/s' : 'degC',
          mean,
          current: mean,
          step: vibration ? 0.1 : 0.5,
          count: kind === 'counter' ? Math.floor(this.random() * 100_000) : 0,
          seq: 0,
        };
        this.state.push(source);
        this.byKind[ki].push(source);
      }
    });
    this.nextOfKind = EVENT_KINDS.map(() => 0);
    this.counts = { messages: 0, events: 0, byKind: { sample: 0, detection: 0, counter: 0 } };
  }

  /** What has been generated since construction or the last reset. */
  stats(): SimulatorCounts {
    return { messages: this.counts.messages, events: this.counts.events, byKind: { ...this.counts.byKind } };
  }

  /**
   * Appends `messages` messages (each of eventsPerMessage events) stamped `timeMs` to `out` and
   * returns `out`. Allocates only the messages and their payloads.
   */
  generate(messages: number, timeMs: number, out: SimMessage[] = []): SimMessage[] {
    const n = this.eventsPerMessage;
    const random = this.random;
    const cumulative = this.cumulative;
    for (let m = 0; m < messages; m++) {
      const pick = random() * this.totalWeight;
      let ki = 0;
      while (ki < 2 && pick >= cumulative[ki]) ki++;
      const pool = this.byKind[ki];
      const source = pool[this.nextOfKind[ki]];
      this.nextOfKind[ki] = this.nextOfKind[ki] + 1 === pool.length ? 0 : this.nextOfKind[ki] + 1;
      let payload: SimEvent | SimEvent[];
      if (n === 1) {
        payload = this.event(source, timeMs, undefined);
      } else {
        const list: SimEvent[] = new Array(n);
        for (let i = 0; i < n; i++) list[i] = this.event(source, timeMs, source.topic);
        payload = list;
      }
      out.push({ topic: source.topic, kind: source.kind, payload });
      this.counts.byKind[source.kind] += n;
    }
    this.counts.messages += messages;
    this.counts.events += messages * n;
    return out;
  }

  private event(s: Source, time: number, source: string | undefined): SimEvent {
    const seq = ++s.seq;
    if (s.kind === 'sample') {
      // Mean-reverting noise: stays near the mean, moves a little each event.
      s.current += (s.mean - s.current) * 0.05 + (this.random() - 0.5) * 2 * s.step;
      const value = round2(s.current);
      return source === undefined ? { value, kind: 'sample', time, seq, unit: s.unit } : { source, value, kind: 'sample', time, seq, unit: s.unit };
    }
    if (s.kind === 'detection') {
      const label = LABELS[Math.floor(this.random() * LABELS.length)];
      const confidence = Math.round((0.5 + this.random() * 0.5) * 1000) / 1000;
      return source === undefined ? { value: 1, kind: 'detection', time, seq, label, confidence } : { source, value: 1, kind: 'detection', time, seq, label, confidence };
    }
    const value = ++s.count;
    return source === undefined ? { value, kind: 'counter', time, seq } : { source, value, kind: 'counter', time, seq };
  }
}
