//! Which routes a listener serves: the public API, the ops routes, or both.

/// Which routes a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Everything: the public listener with FLASHSALE_OPS_ON_MAIN.
    All,
    /// The API, /healthz and /readyz (naming no address); the ops routes answer 404.
    Public,
    /// The ops routes (/metrics, /dashboard, /v1/dashboard/*), /healthz and /readyz.
    Ops,
}

impl Surface {
    pub fn serves(self, path: &str) -> bool {
        let ops = matches!(path, "/metrics" | "/dashboard") || path.starts_with("/v1/dashboard/");
        match self {
            Surface::All => true,
            _ if path == "/healthz" || path == "/readyz" => true,
            Surface::Public => !ops,
            Surface::Ops => ops,
        }
    }

    /// Whether answers may name servers (the Redis primary in /readyz).
    pub fn names_servers(self) -> bool {
        !matches!(self, Surface::Public)
    }
}
