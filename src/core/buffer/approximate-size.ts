/**
 * A cheap estimate of what a value takes, about its encoded size (MessagePack or JSON): numbers 8
 * bytes, strings their length, Buffers and typed arrays their bytes, objects their keys and values
 * plus 16. An array longer than 8 is estimated from its first and last 4 elements, nesting deeper
 * than 8 counts 64, and at most 4096 values are looked at (a circular message stays cheap), so the
 * cost stays bounded whatever the message (bench/ring.js "bytes"). Never throws: a value whose
 * fields cannot be read (a getter that throws) counts UNREADABLE_BYTES.
 */
export function approximateSize(value: unknown): number {
  budget = 4096;
  try {
    return sizeOf(value, 0);
  } catch {
    return UNREADABLE_BYTES;
  }
}

/** What a message whose size cannot be read counts against a memory limit: a guess, a large reading's size. */
const UNREADABLE_BYTES = 1024;

let budget = 0;

function sizeOf(value: unknown, depth: number): number {
  switch (typeof value) {
    case 'number':
    case 'bigint':
      return 8;
    case 'string':
      return value.length + 2;
    case 'boolean':
      return 4;
    case 'object':
      break;
    default:
      return 4;
  }
  if (value === null) return 4;
  if (depth > 8 || --budget < 0) return 64;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof Date) return 8;
  if (Array.isArray(value)) {
    const n = value.length;
    if (n <= 8) {
      let sum = 16;
      for (let i = 0; i < n; i++) sum += sizeOf(value[i], depth + 1);
      return sum;
    }
    let sample = 0;
    for (let i = 0; i < 4; i++) sample += sizeOf(value[i], depth + 1) + sizeOf(value[n - 1 - i], depth + 1);
    return 16 + Math.round((sample / 8) * n);
  }
  let sum = 16;
  for (const key in value) {
    // A message's HTTP request and response are not kept (nor stored): their sockets would dominate.
    if (depth === 0 && (key === 'req' || key === 'res')) continue;
    const field = (value as Record<string, unknown>)[key];
    // A reading's fields are mostly numbers and strings: sized here, without a call each (bench/ring.js "bytes").
    sum += key.length + 2 + (typeof field === 'number' ? 8 : typeof field === 'string' ? field.length + 2 : sizeOf(field, depth + 1));
  }
  return sum;
}
