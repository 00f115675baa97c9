// Coupon spike: arrivals ramp from 0 to PEAK req/s in RAMP, then hold PEAK for
// DURATION; every iteration is a fresh user (unless DUP_RATE asks for repeats)
// POSTing /v1/coupons/$COUPON/issue {"user_id": N}. Outcomes are counted
// (issued_201, sold_out_410, duplicate_409, other); 201/409/410 are all expected
// answers, anything else is a failure. teardown() reads GET /v1/coupons/$COUPON
// and checks there is no oversell (issued == total - remaining, remaining >= 0,
// issued <= total). Writes k6/out/coupon_spike.json and .html.
//
// Run against a prepared service (scripts/k6 does the whole setup and the
// Redis/Kafka/MySQL cross-checks afterwards):
//   scripts/k6 coupon_spike
//   PEAK=2000 DURATION=10s scripts/k6 coupon_spike
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e COUPON=1 k6/coupon_spike.js
// Env: PEAK (3000 req/s), RAMP (5s), DURATION (15s at peak), PRE_VUS (300),
// MAX_VUS (1000), plus those in k6/lib/flashsale.js and k6/lib/report.js.

import http from 'k6/http';
import { fail } from 'k6';
import { issueCoupon, userId, couponState, assertCoupon } from './lib/flashsale.js';
import { commonThresholds, summaryOutputs, TREND_STATS } from './lib/report.js';

const PEAK = Number(__ENV.PEAK || 3000);

export const options = {
  scenarios: {
    coupon_spike: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      preAllocatedVUs: Number(__ENV.PRE_VUS || 300),
      maxVUs: Number(__ENV.MAX_VUS || 1000),
      stages: [
        { target: PEAK, duration: __ENV.RAMP || '5s' },
        { target: PEAK, duration: __ENV.DURATION || '15s' },
      ],
    },
  },
  thresholds: commonThresholds('issue'),
  summaryTrendStats: TREND_STATS,
};

http.setResponseCallback(http.expectedStatuses(201, 409, 410));

export function setup() {
  const c = couponState(); // throws (aborting the run) when the campaign is missing
  console.log(`coupon ${c.coupon_id} before: total ${c.total}, remaining ${c.remaining}`);
}

export default function () {
  issueCoupon(userId());
}

export function teardown() {
  if (!assertCoupon()) fail('coupon oversold: see the teardown checks');
}

export function handleSummary(data) {
  return summaryOutputs('coupon_spike', data);
}
