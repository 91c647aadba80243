/**
 * The Host field of a connection (parseHostList, hostLabel): kept with the option checks in
 * shared/checks.ts, because the editor reads the field with the same functions.
 */
export { hostLabel, parseHostList } from '../shared/checks';

export interface HostAddress {
  host: string;
  port: number;
}
