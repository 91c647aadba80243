'use strict';
/**
 * The unnest INSERT a node-postgres user writes by hand, the ceiling items b, tu (bench/pipeline.js)
 * and "raw" (bench/sink.js) measure the sink against: the same columns and unique key as the auto
 * table, each column one array parameter that node-postgres sends as text (its default for JavaScript
 * arrays), times as epoch milliseconds turned into timestamptz in SQL (cheaper to send and to read
 * than ISO strings).
 */
function rawUnnestSql(table) {
  return `INSERT INTO public.${table} ("time", "source", "kind", "value", "seq") SELECT to_timestamp(u.c1 / 1000.0::float8), u.c2, u.c3, u.c4, u.c5 FROM unnest($1::int8[], $2::text[], $3::text[], $4::float8[], $5::int8[]) AS u(c1, c2, c3, c4, c5)`;
}

module.exports = { rawUnnestSql };
