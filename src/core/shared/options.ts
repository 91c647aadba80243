/**
 * Editor fields arrive as strings (or numbers, or missing in flows written by hand); these turn
 * them into numbers with a default and a clear error naming the field.
 */
export function wholeNumber(value: unknown, field: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new RangeError(`${field} must be a whole number from ${min} to ${max}, got "${String(value)}"`);
  }
  return n;
}

export function positiveNumber(value: unknown, field: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new RangeError(`${field} must be a number from ${min} to ${max}, got "${String(value)}"`);
  }
  return n;
}

export function oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value === null || value === '') return fallback;
  if ((allowed as readonly unknown[]).includes(value)) return value as T;
  throw new RangeError(`${field} must be one of ${allowed.join(', ')}, got "${String(value)}"`);
}

export function flag(value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null || value === '') return fallback;
  return value === true || value === 'true';
}
