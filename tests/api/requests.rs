//! `TestApp`'s HTTP side: one typed method per endpoint, over a pooled
//! keep-alive client, answers parsed as JSON.

use std::{ops::RangeInclusive, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

/// The `Flashsale-Signature` value the gateway would send now with a POST of
/// `body` to `path`.
pub fn sign_payment(path: &str, body: &[u8]) -> String {
    let signer = flashsale::signature::Signer::new(&crate::helpers::PAYMENT_SECRET.parse().unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    signer.sign(now, &flashsale::signature::Target::post(path), body)
}

pub struct Response {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn try_request(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Response, String> {
        self.try_request_with(method, path, body, &[]).await
    }

    pub async fn try_request_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        self.try_request_to(self.addr, method, path, body, headers).await
    }

    /// A request to another instance, at `addr`, with this app's client.
    pub async fn try_request_to(
        &self,
        addr: std::net::SocketAddr,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        let mut req = Request::builder().method(method).uri(format!("http://{addr}{path}"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap();
        let res = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("JSON body, got {bytes:?}"))
        };
        Ok(Response { status, headers, body })
    }

    /// GET returning (status, content type, body text): for non-JSON pages.
    pub async fn try_request_raw(&self, path: &str) -> (StatusCode, String, String) {
        let req = Request::builder().uri(format!("http://{}{path}", self.addr)).body(Full::new(Bytes::new())).unwrap();
        let res = self.client.request(req).await.expect("request completes");
        let status = res.status();
        let content_type =
            res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, String::from_utf8_lossy(&bytes).into_owned())
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Response {
        self.try_request(method, path, body).await.expect("request completes")
    }

    pub async fn issue(&self, coupon_id: u64, user_id: u64) -> Response {
        let body = serde_json::to_vec(&serde_json::json!({ "user_id": user_id })).unwrap();
        self.request(Method::POST, &format!("/v1/coupons/{coupon_id}/issue"), Some(body)).await
    }

    /// `issue`, but a failed connection is an `Err` (the service may be down).
    pub async fn try_issue(&self, coupon_id: u64, user_id: u64) -> Result<Response, String> {
        let body = serde_json::to_vec(&serde_json::json!({ "user_id": user_id })).unwrap();
        self.try_request(Method::POST, &format!("/v1/coupons/{coupon_id}/issue"), Some(body)).await
    }

    /// `reserve`, but a failed connection is an `Err`.
    pub async fn try_reserve(&self, sale: u64, user: u64, items: &[(u64, u64)]) -> Result<Response, String> {
        let items: Vec<Value> = items.iter().map(|(sku, q)| serde_json::json!({"sku": sku, "quantity": q})).collect();
        let body = serde_json::to_vec(&serde_json::json!({"user_id": user, "items": items})).unwrap();
        self.try_request(Method::POST, &format!("/v1/sales/{sale}/orders"), Some(body)).await
    }

    pub async fn issue_raw(&self, coupon_id: u64, body: &[u8]) -> Response {
        self.request(Method::POST, &format!("/v1/coupons/{coupon_id}/issue"), Some(body.to_vec())).await
    }

    /// POST a JSON value, with extra headers.
    pub async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Response {
        let body = serde_json::to_vec(body).unwrap();
        self.try_request_with(Method::POST, path, Some(body), headers).await.expect("request completes")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None).await
    }

    pub async fn reserve(&self, sale: u64, user: u64, items: &[(u64, u64)]) -> Response {
        let items: Vec<Value> = items.iter().map(|(sku, q)| serde_json::json!({"sku": sku, "quantity": q})).collect();
        self.post(&format!("/v1/sales/{sale}/orders"), &serde_json::json!({"user_id": user, "items": items}), &[]).await
    }

    /// A payment callback as the gateway sends it: signed with the test secret,
    /// with a payment_key of its own (`pay-SALE-ORDER`).
    pub async fn confirm(&self, sale: u64, order: u64, amount: u64) -> Response {
        self.confirm_with_key(sale, order, amount, &format!("pay-{sale}-{order}")).await
    }

    pub async fn confirm_with_key(&self, sale: u64, order: u64, amount: u64, payment_key: &str) -> Response {
        let body = serde_json::to_vec(&serde_json::json!({"payment_key": payment_key, "amount": amount})).unwrap();
        let signature = sign_payment(&format!("/v1/sales/{sale}/orders/{order}/confirm"), &body);
        self.confirm_raw(sale, order, body, &[("flashsale-signature", &signature)]).await
    }

    /// A confirm call with exactly these body bytes and headers (signature tests).
    pub async fn confirm_raw(&self, sale: u64, order: u64, body: Vec<u8>, headers: &[(&str, &str)]) -> Response {
        let path = format!("/v1/sales/{sale}/orders/{order}/confirm");
        self.try_request_with(Method::POST, &path, Some(body), headers).await.expect("request completes")
    }

    pub async fn cancel(&self, sale: u64, order: u64) -> Response {
        self.post(&format!("/v1/sales/{sale}/orders/{order}/cancel"), &Value::Null, &[]).await
    }

    /// SKU -> remaining, from `GET /v1/sales/{sale}`.
    pub async fn remaining(&self, sale: u64) -> std::collections::BTreeMap<u64, u64> {
        let sale = self.get(&format!("/v1/sales/{sale}")).await.body;
        sale["skus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["sku"].as_u64().unwrap(), s["remaining"].as_u64().unwrap()))
            .collect()
    }

    pub async fn issue_raw_path(&self, path: &str, body: &[u8]) -> Response {
        self.request(Method::POST, path, Some(body.to_vec())).await
    }

    pub async fn coupon(&self, coupon_id: u64) -> Response {
        self.request(Method::GET, &format!("/v1/coupons/{coupon_id}"), None).await
    }

    /// Issues `coupon` to every user of `users` concurrently, asserting each
    /// one 201; returns the users, in the order their answers came.
    pub async fn issue_all(self: &Arc<Self>, coupon: u64, users: RangeInclusive<u64>) -> Vec<u64> {
        let mut tasks = tokio::task::JoinSet::new();
        for user in users {
            let app = self.clone();
            tasks.spawn(async move {
                assert_eq!(app.issue(coupon, user).await.status, StatusCode::CREATED, "user {user}");
                user
            });
        }
        tasks.join_all().await
    }
}
