// Order spike: arrivals ramp from 0 to PEAK req/s in RAMP, then hold PEAK for
// DURATION; every iteration is a fresh user (unless DUP_RATE asks for repeats)
// POSTing a multi-SKU order (1-3 lines of SKUS) to /v1/sales/$SALE/orders; of
// the created orders CONFIRM_RATIO are paid (POST .../orders/{id}/confirm with
// the order's to_pay) and CANCEL_RATIO cancelled (POST .../orders/{id}/cancel),
// the rest stay reserved. 201/200/409/410 are expected answers, anything else a
// failure. Outcomes are counted (order_201, order_sold_out_410,
// order_conflict_409, order_other, confirm_200/_other, cancel_200/_other).
// teardown() reads GET /v1/sales/$SALE and checks every SKU has
// 0 <= remaining <= stock. Writes k6/out/order_spike.json and .html.
//
//   scripts/k6 order_spike
//   PEAK=1500 DURATION=10s scripts/k6 order_spike
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SALE=1 -e SKUS=1,2,3 k6/order_spike.js
// Env: PEAK (3000 req/s), RAMP (5s), DURATION (15s at peak), PRE_VUS (300),
// MAX_VUS (1000), plus those in k6/lib/flashsale.js and k6/lib/report.js.

import http from 'k6/http';
import { fail } from 'k6';
import { placeOrder, userId, saleState, assertSale } from './lib/flashsale.js';
import { commonThresholds, summaryOutputs, TREND_STATS } from './lib/report.js';

const PEAK = Number(__ENV.PEAK || 3000);

export const options = {
  scenarios: {
    order_spike: {
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
  thresholds: commonThresholds('reserve', 'confirm', 'cancel'),
  summaryTrendStats: TREND_STATS,
};

http.setResponseCallback(http.expectedStatuses(200, 201, 409, 410));

export function setup() {
  const s = saleState(); // throws (aborting the run) when the sale is missing
  console.log(`sale ${s.sale_id} before: ${s.skus.map((k) => `sku ${k.sku} ${k.remaining}/${k.stock}`).join(', ')}`);
}

export default function () {
  placeOrder(userId());
}

export function teardown() {
  if (!assertSale()) fail('sale oversold: see the teardown checks');
}

export function handleSummary(data) {
  return summaryOutputs('order_spike', data);
}
