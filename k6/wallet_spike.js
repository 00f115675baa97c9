// Wallet spike: during an order spike, every iteration is a fresh user who
// charges their wallet (POST /v1/wallets/{user}/charge, TOPUP minor units,
// signed as the gateway would, one Idempotency-Key and payment_key per user) and then reserves a 1-3 line order of SALE
// and pays it from the wallet (POST .../orders/{id}/pay {"method":"wallet"}).
// Arrivals ramp from 0 to PEAK iterations/s in RAMP, then hold PEAK for
// DURATION. 200/201/402/409/410 are expected answers (402: an order dearer
// than TOPUP), anything else a failure. Outcomes are counted (charge_200,
// charge_other, wallet_pay_200, wallet_pay_402, wallet_pay_other, plus the
// order counters of k6/lib/flashsale.js).
// teardown() checks the sale is not oversold and, for the first CHECK_USERS
// users, that wallet and orders agree: balance >= 0, and balance + the
// to_pay of their paid orders == TOPUP (charged, maybe spent) or 0 (never
// charged) — a debit without its paid order, or the reverse, breaks it.
// Writes k6/out/wallet_spike.json and .html.
//
//   scripts/k6 wallet_spike
//   PEAK=800 DURATION=10s scripts/k6 wallet_spike
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SALE=1 -e SKUS=1,2,3 k6/wallet_spike.js
// Env: PEAK (500 iterations/s, each 3 requests), RAMP (5s), DURATION (15s),
// TOPUP (30000), CHECK_USERS (100), PRE_VUS (300), MAX_VUS (1000), plus those
// in k6/lib/flashsale.js and k6/lib/report.js.

import http from 'k6/http';
import { check, fail } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE_URL, SALE, SKUS, userId, saleState, assertSale, signed } from './lib/flashsale.js';
import { commonThresholds, summaryOutputs, TREND_STATS } from './lib/report.js';

const PEAK = Number(__ENV.PEAK || 500);
const TOPUP = Number(__ENV.TOPUP || 30000);
const CHECK_USERS = Number(__ENV.CHECK_USERS || 100);
const USER_BASE = Number(__ENV.USER_BASE || 1);
const PARAMS = { headers: { 'content-type': 'application/json' }, timeout: __ENV.REQ_TIMEOUT || '10s' };

const charge200 = new Counter('charge_200');
const chargeOther = new Counter('charge_other');
const reserve201 = new Counter('order_201');
const reserveRefused = new Counter('order_refused');
const pay200 = new Counter('wallet_pay_200');
const pay402 = new Counter('wallet_pay_402');
const payOther = new Counter('wallet_pay_other');

export const options = {
  scenarios: {
    wallet_spike: {
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
  thresholds: commonThresholds('charge', 'reserve', 'pay'),
  summaryTrendStats: TREND_STATS,
  teardownTimeout: '120s',
};

http.setResponseCallback(http.expectedStatuses(200, 201, 402, 409, 410));

let logged = 0;
function logUnexpected(what, res) {
  if (logged++ < 3) console.warn(`${what}: unexpected ${res.status} ${res.error || ''} ${String(res.body || '').slice(0, 200)}`);
}

export function setup() {
  const s = saleState();
  console.log(`sale ${s.sale_id} before: ${s.skus.map((k) => `sku ${k.sku} ${k.remaining}/${k.stock}`).join(', ')}`);
}

function pickItems() {
  const pool = SKUS.slice();
  const lines = 1 + Math.floor(Math.random() * Math.min(3, pool.length));
  const items = [];
  for (let n = 0; n < lines; n++) items.push({ sku: pool.splice(Math.floor(Math.random() * pool.length), 1)[0], quantity: 1 });
  return items;
}

export default function () {
  const user = userId();
  // A charge is a gateway payment: signed for this wallet, with its own payment_key.
  const chargeBody = JSON.stringify({ amount: TOPUP, payment_key: `k6-topup-${SALE}-${user}` });
  const chargePath = `/v1/wallets/${user}/charge`;
  const charged = http.post(`${BASE_URL}${chargePath}`, chargeBody, {
    ...PARAMS,
    headers: { ...PARAMS.headers, 'idempotency-key': `k6-topup-${user}`, ...signed('POST', chargePath, chargeBody) },
    tags: { name: 'charge' },
  });
  if (charged.status === 200) charge200.add(1);
  else { chargeOther.add(1); logUnexpected('charge', charged); return; }

  const res = http.post(`${BASE_URL}/v1/sales/${SALE}/orders`, JSON.stringify({ user_id: user, items: pickItems() }), {
    ...PARAMS,
    tags: { name: 'reserve' },
  });
  if (res.status !== 201) {
    if (res.status === 409 || res.status === 410) reserveRefused.add(1);
    else logUnexpected('reserve', res);
    return;
  }
  reserve201.add(1);
  const order = res.json();
  const paid = http.post(`${BASE_URL}/v1/sales/${SALE}/orders/${order.order_id}/pay`, JSON.stringify({ method: 'wallet' }), {
    ...PARAMS,
    tags: { name: 'pay' },
  });
  if (paid.status === 200) pay200.add(1);
  else if (paid.status === 402) pay402.add(1);
  else { payOther.add(1); logUnexpected('pay', paid); }
}

function getJson(path) {
  const res = http.get(`${BASE_URL}${path}`, { timeout: '10s', tags: { name: 'state' }, responseCallback: http.expectedStatuses(200) });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body}`);
  return res.json();
}

// Every order of the user, all pages.
function ordersOf(user) {
  const orders = [];
  let before = null;
  do {
    const page = getJson(`/v1/users/${user}/orders?limit=100${before ? `&before=${before}` : ''}`);
    orders.push(...page.orders);
    before = page.next;
  } while (before);
  return orders;
}

export function teardown() {
  const oversold = !assertSale();
  let consistent = 0;
  const broken = [];
  for (let user = USER_BASE; user < USER_BASE + CHECK_USERS; user++) {
    const balance = getJson(`/v1/wallets/${user}`).balance;
    const spent = ordersOf(user).filter((o) => o.status === 'paid').reduce((sum, o) => sum + o.to_pay, 0);
    if (balance >= 0 && (balance + spent === TOPUP || (balance === 0 && spent === 0))) consistent++;
    else broken.push(`user ${user}: balance ${balance}, paid orders ${spent}`);
  }
  console.log(`wallets: ${consistent} of ${CHECK_USERS} users consistent${broken.length ? `; ${broken.slice(0, 5).join('; ')}` : ''}`);
  const ok = check(broken, { 'wallet: balance + paid orders == charged, for every user checked': (b) => b.length === 0 }, { phase: 'teardown' });
  if (oversold || !ok) fail('teardown checks failed: see above');
}

export function handleSummary(data) {
  return summaryOutputs('wallet_spike', data);
}
