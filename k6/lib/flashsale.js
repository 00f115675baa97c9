// Shared flashsale request flows for the k6 scenarios: coupon issue, multi-SKU
// order (then confirm or cancel), the outcome counters, and the teardown
// invariants (no oversell). Used by k6/coupon_spike.js, k6/order_spike.js and
// k6/soak.js; not run directly.
//
// Env: BASE_URL (http://127.0.0.1:8080), COUPON (1), SALE (1), SKUS ("1,2,3"),
// USER_BASE (1: first user id), DUP_RATE (0: share of requests reusing an
// earlier user id instead of a fresh one), CONFIRM_RATIO (0.5) and
// CANCEL_RATIO (0.2: of the created orders, how many get paid / cancelled; the
// rest stay reserved), REQ_TIMEOUT (10s), PAYMENT_SECRET (the service's
// FLASHSALE_PAYMENT_SECRET: confirm calls are signed with it, as a payment
// gateway signs its callbacks; unset: sent unsigned, for --payments-unsigned).

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import crypto from 'k6/crypto';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
export const COUPON = __ENV.COUPON || '1';
export const SALE = __ENV.SALE || '1';
export const SKUS = (__ENV.SKUS || '1,2,3').split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const USER_BASE = Number(__ENV.USER_BASE || 1);
const DUP_RATE = Number(__ENV.DUP_RATE || 0);
const CONFIRM_RATIO = Number(__ENV.CONFIRM_RATIO || 0.5);
const CANCEL_RATIO = Number(__ENV.CANCEL_RATIO || 0.2);
const PAYMENT_SECRET = __ENV.PAYMENT_SECRET || '';
const PARAMS = { headers: { 'content-type': 'application/json' }, timeout: __ENV.REQ_TIMEOUT || '10s' };

// Coupon outcomes.
const issued201 = new Counter('issued_201');
const soldOut410 = new Counter('sold_out_410');
const duplicate409 = new Counter('duplicate_409');
const other = new Counter('other');
// Order outcomes.
const order201 = new Counter('order_201');
const order410 = new Counter('order_sold_out_410');
const order409 = new Counter('order_conflict_409');
const orderOther = new Counter('order_other');
const confirm200 = new Counter('confirm_200');
const confirmOther = new Counter('confirm_other');
const cancel200 = new Counter('cancel_200');
const cancelOther = new Counter('cancel_other');

// A few unexpected answers per VU go to the log, enough to see what went wrong.
let logged = 0;
function logUnexpected(what, res) {
  if (logged++ < 3) console.warn(`${what}: unexpected ${res.status} ${res.error || ''} ${String(res.body || '').slice(0, 200)}`);
}

// A fresh user per iteration (unique across all VUs of the scenario), or with
// probability DUP_RATE an earlier one again.
export function userId() {
  const i = exec.scenario.iterationInTest;
  if (DUP_RATE > 0 && i > 0 && Math.random() < DUP_RATE) return USER_BASE + Math.floor(Math.random() * i);
  return USER_BASE + i;
}

export function issueCoupon(user) {
  const res = http.post(`${BASE_URL}/v1/coupons/${COUPON}/issue`, JSON.stringify({ user_id: user }), {
    ...PARAMS,
    tags: { name: 'issue' },
  });
  switch (res.status) {
    case 201: issued201.add(1); break;
    case 410: soldOut410.add(1); break;
    case 409: duplicate409.add(1); break;
    default: other.add(1); logUnexpected('issue', res);
  }
  return res;
}

// 1..3 distinct SKUs (at most 3 units in all: the default per-user limit).
function pickItems() {
  const pool = SKUS.slice();
  const lines = 1 + Math.floor(Math.random() * Math.min(3, pool.length));
  const items = [];
  for (let n = 0; n < lines; n++) {
    const sku = pool.splice(Math.floor(Math.random() * pool.length), 1)[0];
    items.push({ sku, quantity: 1 });
  }
  if (items.length === 1 && Math.random() < 0.5) items[0].quantity = 2;
  return items;
}

// Reserve a multi-SKU order; of the created ones CONFIRM_RATIO get paid (with
// the exact to_pay), CANCEL_RATIO cancelled, the rest stay reserved.
export function placeOrder(user) {
  const res = http.post(`${BASE_URL}/v1/sales/${SALE}/orders`, JSON.stringify({ user_id: user, items: pickItems() }), {
    ...PARAMS,
    tags: { name: 'reserve' },
  });
  switch (res.status) {
    case 201: order201.add(1); break;
    case 410: order410.add(1); return res;
    case 409: order409.add(1); return res;
    default: orderOther.add(1); logUnexpected('reserve', res); return res;
  }
  const order = res.json();
  const orderUrl = `${BASE_URL}/v1/sales/${SALE}/orders/${order.order_id}`;
  const r = Math.random();
  if (r < CONFIRM_RATIO) {
    const body = JSON.stringify({ payment_key: `k6-${SALE}-${order.order_id}`, amount: order.to_pay });
    const paid = http.post(`${orderUrl}/confirm`, body, {
      ...PARAMS,
      headers: { ...PARAMS.headers, ...signed('POST', `/v1/sales/${SALE}/orders/${order.order_id}/confirm`, body) },
      tags: { name: 'confirm' },
    });
    if (paid.status === 200) confirm200.add(1);
    else { confirmOther.add(1); logUnexpected('confirm', paid); }
  } else if (r < CONFIRM_RATIO + CANCEL_RATIO) {
    const cancelled = http.post(`${orderUrl}/cancel`, null, { ...PARAMS, tags: { name: 'cancel' } });
    if (cancelled.status === 200) cancel200.add(1);
    else { cancelOther.add(1); logUnexpected('cancel', cancelled); }
  }
  return res;
}

// The gateway's `Flashsale-Signature`:
// t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<METHOD> <path>.<body>")>.
export function signed(method, path, body) {
  if (!PAYMENT_SECRET) return {};
  const t = Math.floor(Date.now() / 1000);
  const mac = crypto.hmac('sha256', PAYMENT_SECRET, `${t}.${method} ${path}.${body}`, 'hex');
  return { 'flashsale-signature': `t=${t},v1=${mac}` };
}

function getJson(path) {
  // 200 is the only good answer here, whatever the script's response callback says.
  const res = http.get(`${BASE_URL}${path}`, {
    timeout: '10s',
    tags: { name: 'state' },
    responseCallback: http.expectedStatuses(200),
  });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body}`);
  return res.json();
}

export function couponState() {
  return getJson(`/v1/coupons/${COUPON}`);
}

export function saleState() {
  return getJson(`/v1/sales/${SALE}`);
}

// No oversell on the coupon: issued == total - remaining, 0 <= remaining, issued <= total.
// Returns whether all held.
export function assertCoupon() {
  const c = couponState();
  console.log(`coupon ${COUPON}: total ${c.total}, issued ${c.issued}, remaining ${c.remaining}`);
  return check(c, {
    'coupon: issued == total - remaining': (s) => s.issued === s.total - s.remaining,
    'coupon: remaining >= 0': (s) => s.remaining >= 0,
    'coupon: issued <= total': (s) => s.issued <= s.total,
  }, { phase: 'teardown' });
}

// No oversell on any SKU of the sale: 0 <= remaining <= stock.
export function assertSale() {
  const s = saleState();
  console.log(`sale ${SALE}: ${s.skus.map((k) => `sku ${k.sku} ${k.remaining}/${k.stock}`).join(', ')}`);
  return check(s, {
    'sale: every SKU remaining >= 0': (x) => x.skus.length > 0 && x.skus.every((k) => k.remaining >= 0),
    'sale: every SKU remaining <= stock': (x) => x.skus.length > 0 && x.skus.every((k) => k.remaining <= k.stock),
  }, { phase: 'teardown' });
}
