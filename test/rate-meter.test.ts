/** The rate the sink's badge and stats share: a running total read now and then, per second over the last 5 s. */
import assert from 'node:assert/strict';
import { RateMeter } from '../src/core/shared/rate-meter';
import { toPrometheus } from '../src/core/shared/prometheus';

describe('the rate meter', function () {
  it('gives the change per second since the oldest reading inside the window', function () {
    const meter = new RateMeter(5000);
    assert.equal(meter.rate(1000, 0), 0, 'one reading: no rate yet');
    assert.equal(meter.rate(2000, 500), 500);
    assert.equal(meter.rate(3000, 1500), 750, '1,500 rows in 2 s');
    assert.equal(meter.rate(3000, 1500), 750, 'read twice at once: the same');
    // Past the window the oldest readings go: 8000 - 3000 = 5 s, 2,000 rows more.
    assert.equal(meter.rate(8000, 3500), 400);
    assert.equal(meter.rate(20_000, 3500), 0, 'nothing written lately: 0, not the average since the start');
  });

  it('keeps two readings however far apart, and starts again when the clock goes back', function () {
    const meter = new RateMeter(5000);
    meter.rate(0, 0);
    assert.equal(meter.rate(60_000, 6000), 100, 'a minute between readings: the rate over that minute');
    assert.equal(meter.rate(30_000, 7000), 0, 'an earlier time: a new start, never a negative rate');
    assert.equal(meter.rate(31_000, 7100), 100);
  });

  it('is a gauge in the Prometheus output, not a total', function () {
    const text = toPrometheus([{ id: 's1', type: 'timescale-sink', name: '', stats: { rowsPerSecond: 12.5, written: 100 } }]);
    assert.match(text, /^telemetry_timescale_sink_rows_per_second\{node_id="s1",node_name=""\} 12\.5$/m);
    assert.match(text, /# TYPE telemetry_timescale_sink_rows_per_second gauge/);
    assert.match(text, /^telemetry_timescale_sink_written_total\{/m);
  });
});
