// Soak: a constant RATE req/s for DURATION, each iteration a fresh user who
// either asks for a coupon (share COUPON_SHARE: POST /v1/coupons/$COUPON/issue)
// or places a multi-SKU order on sale $SALE (then maybe confirms or cancels it,
// as in k6/order_spike.js). 200/201/409/410 are expected answers, anything else
// a failure. teardown() checks both invariants: the coupon is not oversold
// (issued == total - remaining, 0 <= remaining, issued <= total) and every SKU
// has 0 <= remaining <= stock. Writes k6/out/soak.json and .html.
//
//   scripts/k6 soak
//   RATE=300 DURATION=5m scripts/k6 soak
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e COUPON=1 -e SALE=1 k6/soak.js
// Env: RATE (500 req/s), DURATION (60s), COUPON_SHARE (0.5), PRE_VUS (50),
// MAX_VUS (500), plus those in k6/lib/flashsale.js and k6/lib/report.js.

import http from 'k6/http';
import { fail } from 'k6';
import { issueCoupon, placeOrder, userId, couponState, saleState, assertCoupon, assertSale } from './lib/flashsale.js';
import { commonThresholds, summaryOutputs, TREND_STATS } from './lib/report.js';

const COUPON_SHARE = Number(__ENV.COUPON_SHARE || 0.5);

export const options = {
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 500),
      timeUnit: '1s',
      duration: __ENV.DURATION || '60s',
      preAllocatedVUs: Number(__ENV.PRE_VUS || 50),
      maxVUs: Number(__ENV.MAX_VUS || 500),
    },
  },
  thresholds: commonThresholds('issue', 'reserve', 'confirm', 'cancel'),
  summaryTrendStats: TREND_STATS,
};

http.setResponseCallback(http.expectedStatuses(200, 201, 409, 410));

export function setup() {
  couponState(); // both throw (aborting the run) when the campaign or sale is missing
  saleState();
}

export default function () {
  const user = userId();
  if (Math.random() < COUPON_SHARE) issueCoupon(user);
  else placeOrder(user);
}

export function teardown() {
  const couponOk = assertCoupon();
  const saleOk = assertSale();
  if (!couponOk || !saleOk) fail('oversold: see the teardown checks');
}

export function handleSummary(data) {
  return summaryOutputs('soak', data);
}
