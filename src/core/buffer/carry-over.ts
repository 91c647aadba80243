import * as fs from 'fs';
import * as path from 'path';
import { isRecordGroup } from '../readings/records';
import type { ResolvedShapeOptions } from '../readings/shapes';
import { SequenceJournal, type SequenceStamper } from '../readings/sequence';
import type { Translate } from '../shared/text';
import { Totals } from '../shared/totals';
import { type BufferMessage, type HeldItem, HeldMessage, messageWeight, noUpstream, persisted, weightOf } from './held-item';
import { restoreSpool, spoolFileFor, writeSpool } from './spool';

/** Counters that add up across instances (see Totals); `dropped` and `drained` are sums of others but add up the same way. */
export const CUMULATIVE = [
  'received', 'delivered', 'failed', 'unacknowledged', 'droppedOverflow', 'droppedOversize', 'droppedDiskError', 'dropped', 'drained',
  'restored', 'spooled', 'spoolLost', 'spoolErrors', 'spoolBadLines', 'spoolBadBytes', 'resentSkipped', 'ignored',
] as const;
export type Cumulative = (typeof CUMULATIVE)[number];

/**
 * restored: events read back from the spool at start (counted as received again). spooled:
 * events written to it at close; spoolLost: events drained at close that could not be written
 * (drained = spooled + spoolLost). spoolBadLines/Bytes: what a restore could not read back (the
 * file is then kept aside). spoolErrors: restores and spools that failed in part or whole.
 */
export interface SpoolCounters {
  restored: number;
  spooled: number;
  spoolLost: number;
  spoolErrors: number;
  spoolBadLines: number;
  spoolBadBytes: number;
}

/** The totals as saved: every cumulative counter, and what is held now (folded into drained). */
export type CarriedTotals = Record<Cumulative, number> & { depth: number; inFlight: number; diskDepth?: number };

export interface CarryOverLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * What a buffer carries over to its next run, in files beside each other (one directory for
 * every buffer): the spool (what it held at close, spool.ts), its totals (Totals), the sequence
 * journal (numbering continues), and what an MQTT broker may send again after a deploy.
 */
export class CarryOver {
  readonly spoolFile: string;
  readonly totals: Totals<Cumulative>;
  readonly journal: SequenceJournal;
  readonly counters: SpoolCounters = { restored: 0, spooled: 0, spoolLost: 0, spoolErrors: 0, spoolBadLines: 0, spoolBadBytes: 0 };
  private readonly resendFile: string;

  constructor(filesDir: string, nodeId: string, private readonly log: CarryOverLog, private readonly t: Translate) {
    this.spoolFile = spoolFileFor(filesDir, nodeId);
    const base = this.spoolFile.replace(/\.jsonl$/, '');
    this.resendFile = `${base}.resend.json`;
    this.totals = new Totals<Cumulative>(`${base}.totals.json`, CUMULATIVE);
    this.journal = new SequenceJournal(`${base}.sequences`);
  }

  /** Sequence numbers continue across redeploys and restarts through the journal. */
  openJournal(sequences: SequenceStamper): void {
    try {
      const opened = this.journal.open(sequences);
      if (!opened.clean) this.log.warn(this.t('log.notClosedCleanly'));
    } catch (err) {
      this.log.warn(this.t('log.sequencesUnreadable', { file: this.journal.file, error: (err as Error).message }));
    }
  }

  /** What an MQTT broker may send again, saved by the last instance if it closed for a deploy just now (else none). */
  takeResendMemory(now: number): string[] {
    try {
      const saved = JSON.parse(fs.readFileSync(this.resendFile, 'utf8')) as { savedAt: number; lately: string[] };
      fs.rmSync(this.resendFile, { force: true });
      if (now - saved.savedAt < 60_000 && Array.isArray(saved.lately)) return saved.lately.filter((f) => typeof f === 'string');
    } catch {
      /* no deploy just before this start */
    }
    return [];
  }

  saveResendMemory(lately: string[], now: number): void {
    try {
      fs.mkdirSync(path.dirname(this.resendFile), { recursive: true });
      fs.writeFileSync(this.resendFile, JSON.stringify({ savedAt: now, lately }));
    } catch (err) {
      this.log.warn(this.t('log.resendMemoryNotSaved', { file: this.resendFile, error: (err as Error).message }));
    }
  }

  /**
   * Offers what the previous instance spooled at close, read line by line (a spool may be larger
   * than one string can hold); its sequence numbers continue before the first new message is stamped.
   */
  restoreSpool(offer: (held: HeldItem, weight: number) => void, sequences: SequenceStamper, shapes: ResolvedShapeOptions, newId: () => string): void {
    const counters = this.counters;
    const restore = restoreSpool<BufferMessage>(this.spoolFile, {
      onHeader: (header) => sequences.restore(header.sequences),
      onMessage: (msg) => {
        if (isRecordGroup(msg)) {
          // Readings kept as records (see persisted): each is one reading again.
          for (const record of msg.payload) {
            counters.restored++;
            offer(typeof record === 'object' && record !== null ? record : { payload: record }, 1);
          }
          return;
        }
        msg._msgid = newId();
        const weight = messageWeight(msg, shapes);
        counters.restored += weight;
        offer(new HeldMessage(msg, noUpstream, weight), weight);
      },
    });
    counters.spoolBadLines += restore.badLines;
    counters.spoolBadBytes += restore.badBytes;
    if (restore.restored > 0) this.log.info(this.t('log.restored', { messages: restore.restored, events: counters.restored }));
    if (restore.error !== undefined || restore.badLines > 0) {
      counters.spoolErrors++;
      const why = restore.error !== undefined ? restore.error.message : this.t('log.unreadableLines', { lines: restore.badLines });
      const kept = restore.keptAs !== undefined ? this.t('log.spoolKeptAs', { file: restore.keptAs }) : this.t('log.spoolStays');
      this.log.error(this.t('log.spoolNotRestored', { file: this.spoolFile, error: why, bytes: restore.badBytes, kept }));
    }
  }

  /** Writes what the buffer held at close to the spool, counting what it wrote and what it could not. */
  writeSpool(all: HeldItem[], removed: boolean, shapes: ResolvedShapeOptions): void {
    const counters = this.counters;
    let events = 0;
    for (const held of all) events += weightOf(held, shapes);
    try {
      const { skipped, skippedAt } = writeSpool(this.spoolFile, {}, all.map(persisted));
      let lost = 0;
      for (const i of skippedAt) lost += weightOf(all[i], shapes);
      counters.spooled += events - lost;
      counters.spoolLost += lost;
      if (all.length > 0) {
        this.log.info(this.t(removed ? 'log.spooledNodeDeleted' : 'log.spooled', { messages: all.length - skipped, file: this.spoolFile }));
      }
      if (skipped > 0) {
        counters.spoolErrors++;
        this.log.error(this.t('log.notJson', { messages: skipped, events: lost }));
      }
    } catch (err) {
      counters.spoolErrors++;
      counters.spoolLost += events;
      this.log.error(this.t('log.spoolFailed', { messages: all.length, file: this.spoolFile, error: (err as Error).message }));
    }
  }

  /**
   * Saves the totals (`totals`: this instance's counters with the earlier ones added). Whatever is
   * held counts as handed over: after a crash the next start finds what it can; at close only the
   * disk tier still holds events.
   */
  saveTotals(current: () => CarriedTotals, closing: boolean): void {
    try {
      const totals = current();
      totals.drained += closing ? totals.depth : totals.depth + totals.inFlight;
      this.totals.save(totals, { onDisk: totals.diskDepth ?? 0 });
    } catch (err) {
      this.log.warn(this.t('log.totalsNotSaved', { file: this.totals.file, error: (err as Error).message }));
    }
  }

  saveSequences(sequences: SequenceStamper): void {
    this.journal.save(sequences, (err) => this.log.warn(this.t('log.sequencesNotSaved', { file: this.journal.file, error: err.message })));
  }

  /** At close: a deleted node forgets its totals and numbers; else they are saved for the next run. */
  close(removed: boolean, sequences: SequenceStamper, totals: () => CarriedTotals): void {
    try {
      if (removed) {
        this.totals.remove();
        this.journal.remove();
      } else {
        this.saveTotals(totals, true);
        this.journal.close(sequences);
      }
    } catch (err) {
      this.log.warn(this.t('log.sequencesNotSaved', { file: this.journal.file, error: (err as Error).message }));
    }
  }
}
