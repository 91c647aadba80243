/**
 * Modbus reads as node-red-contrib-modbus sends them: the register values with the request they
 * answered; one reading per register, source <topic>/<hr|ir|coil|di><address>.
 */
import type { ResolvedShapeOptions } from './shape-options';
import { Collector, valueProblem, type InputMessage, type ShapeResult } from './shape-result';
import { isObject, wholeNumberOf } from './values';

/** Source prefixes by Modbus read function code: coils, discrete inputs, holding and input registers. */
const REGISTER_PREFIX: Record<number, string> = { 1: 'coil', 2: 'di', 3: 'hr', 4: 'ir' };

interface ModbusRead {
  fc: number;
  address: number;
  quantity: number | undefined;
}

/** The request a node-red-contrib-modbus read answered: modbus-read keeps it in msg.input, modbus-flex-getter in msg.modbusRequest. */
function modbusReadOf(msg: InputMessage): ModbusRead | undefined {
  return modbusRequestOf(msg.modbusRequest) ?? (isObject(msg.input) ? modbusRequestOf((msg.input as Record<string, unknown>).payload) : undefined);
}

function modbusRequestOf(request: unknown): ModbusRead | undefined {
  if (!isObject(request)) return undefined;
  const r = request as Record<string, unknown>;
  const fc = wholeNumberOf(r.fc);
  const address = wholeNumberOf(r.address);
  if (fc === undefined || address === undefined || REGISTER_PREFIX[fc] === undefined) return undefined;
  const quantity = wholeNumberOf(r.quantity);
  return { fc, address, quantity: quantity !== undefined && quantity > 0 ? quantity : undefined };
}

/** The register values of a Modbus read with its request: output 1 carries them as the payload, output 2 (the raw response) in msg.values. */
export function registerValuesOf(msg: InputMessage): { read: ModbusRead; values: unknown[] } | undefined {
  const values = Array.isArray(msg.payload) ? msg.payload : Array.isArray(msg.values) && isObject(msg.payload) ? (msg.values as unknown[]) : undefined;
  if (values === undefined) return undefined;
  const read = modbusReadOf(msg);
  return read === undefined ? undefined : { read, values };
}

export function registers(msg: InputMessage, options: ResolvedShapeOptions): ShapeResult | undefined {
  const found = registerValuesOf(msg);
  if (found === undefined) return undefined;
  const { read, values } = found;
  // Coils and discrete inputs come padded to whole bytes (3 coils read give 8 booleans).
  const count = read.quantity === undefined ? values.length : Math.min(read.quantity, values.length);
  const topic = typeof msg.topic === 'string' ? msg.topic : '';
  const prefix = REGISTER_PREFIX[read.fc];
  const out = new Collector(msg);
  for (let i = 0; i < count; i++) {
    const name = `${prefix}${read.address + i}`;
    const source = topic === '' ? name : `${topic}${options.separator}${name}`;
    out.add({ topic: source, payload: values[i], timestamp: msg.timestamp, kind: msg.kind }, valueProblem(values[i], 'the register value'));
  }
  if (out.count === 0) return undefined;
  return out.result('registers');
}
