// Waiting-room spike: users arrive at RATE a second for DURATION; each first
// tries to reserve without an admission (must be 403 `not_admitted`), then
// joins sale $QUEUE_SALE's room, polls at `poll_after_ms` until admitted, sold
// out or expired (at most WAIT_LIMIT), and reserves one unit of SKU 1 with
// the admission when admitted. Counted: queue_join_201, queue_admitted,
// queue_sold_out, queue_expired, queue_reserve_201 (admitted and reserved),
// queue_reserve_other, unadmitted_reserve_201 (a reservation without an
// admission that went through: must stay 0) and fifo_inversions (a poll whose
// serving position went backwards, or an admission of a ticket the line had not
// reached: must stay 0). scripts/k6 also checks, from Redis, that admissions
// followed the line and that every order's user was admitted.
//
//   scripts/k6 queue_spike
//   RATE=400 DURATION=20s scripts/k6 queue_spike
// Env: RATE (200 users/s), DURATION (10s), WAIT_LIMIT (60 s), QUEUE_SALE (2),
// PRE_VUS (200), MAX_VUS (2000), plus BASE_URL and those in k6/lib/report.js.

import http from 'k6/http';
import exec from 'k6/execution';
import { sleep, fail } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE_URL } from './lib/flashsale.js';
import { summaryOutputs, TREND_STATS } from './lib/report.js';

const SALE = __ENV.QUEUE_SALE || '2';
const WAIT_LIMIT = Number(__ENV.WAIT_LIMIT || 60);
const PARAMS = { headers: { 'content-type': 'application/json' }, timeout: '10s' };

const joined = new Counter('queue_join_201');
const admitted = new Counter('queue_admitted');
const soldOut = new Counter('queue_sold_out');
const expired = new Counter('queue_expired');
const reserved = new Counter('queue_reserve_201');
const reserveOther = new Counter('queue_reserve_other');
const unadmitted = new Counter('unadmitted_reserve_201');
const inversions = new Counter('fifo_inversions');
const other = new Counter('queue_other');

export const options = {
  scenarios: {
    queue_spike: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 200),
      timeUnit: '1s',
      duration: __ENV.DURATION || '10s',
      preAllocatedVUs: Number(__ENV.PRE_VUS || 200),
      maxVUs: Number(__ENV.MAX_VUS || 2000),
    },
  },
  thresholds: {
    unadmitted_reserve_201: ['count==0'],
    fifo_inversions: ['count==0'],
    queue_other: ['count==0'],
    queue_reserve_other: ['count==0'],
    queue_reserve_201: ['count>0'],
    'http_req_duration{name:poll}': [`p(99)<${Number(__ENV.P99_MS || 200)}`],
  },
  summaryTrendStats: TREND_STATS,
};

http.setResponseCallback(http.expectedStatuses(200, 201, 403, 410));

const order = (user, admission) => http.post(
  `${BASE_URL}/v1/sales/${SALE}/orders`,
  JSON.stringify({ user_id: user, items: [{ sku: 1, quantity: 1 }] }),
  { ...PARAMS, headers: admission ? { ...PARAMS.headers, 'flashsale-admission': admission } : PARAMS.headers,
    tags: { name: admission ? 'reserve' : 'reserve_unadmitted' } },
);

export function setup() {
  const res = http.get(`${BASE_URL}/v1/sales/${SALE}`);
  if (res.status !== 200) fail(`sale ${SALE}: ${res.status} ${res.body}`);
}

export default function () {
  const user = 1 + exec.scenario.iterationInTest;
  if (order(user).status === 201) unadmitted.add(1);
  const join = http.post(`${BASE_URL}/v1/sales/${SALE}/queue`, JSON.stringify({ user_id: user }),
    { ...PARAMS, tags: { name: 'join' } });
  if (join.status === 410) { soldOut.add(1); return; }
  if (join.status !== 201) { other.add(1); return; }
  joined.add(1);
  let status = join.json();
  const ticket = status.ticket;
  const until = Date.now() + WAIT_LIMIT * 1000;
  let served = -1;
  while (Date.now() < until) {
    if (status.position != null && status.ahead != null) {
      // The serving position this answer implies: never backwards; and a
      // ticket the line has passed is decided, never still waiting.
      const now = status.position - status.ahead - 1;
      if (now < served) inversions.add(1);
      served = Math.max(served, now);
    }
    if (status.state === 'admitted') break;
    if (status.state === 'sold_out') { soldOut.add(1); return; }
    if (status.state === 'expired') { expired.add(1); return; }
    sleep(Math.min(status.poll_after_ms || 1000, 2000) / 1000);
    const res = http.get(`${BASE_URL}/v1/sales/${SALE}/queue/${ticket}`, { ...PARAMS, tags: { name: 'poll' } });
    if (res.status !== 200) { other.add(1); return; }
    status = res.json();
  }
  if (status.state !== 'admitted') { expired.add(1); return; }
  admitted.add(1);
  const res = order(user, status.admission);
  if (res.status === 201) reserved.add(1);
  else if (res.status !== 410) reserveOther.add(1);
}

export function handleSummary(data) {
  return summaryOutputs('queue_spike', data);
}
