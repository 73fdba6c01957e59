//! Where this server may send a request an operator or an agency configured, and how the
//! request is signed: the egress policy (出站策略) every outbound HTTP client of the platform
//! connects through (agencies' webhooks, the SMS gateway), the form of an outbound URL, and the
//! `Banli-Signature` HMAC a receiver checks.

pub mod policy;
pub mod sign;

/// Checks an endpoint URL's form: absolute `http` or `https` with a host, no credentials. Where
/// it may point is the egress policy's to say ([`policy::Egress::check_url`]).
pub fn check_url(url: &str) -> Result<hyper::Uri, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(format!("`{url}`: a webhook URL is http:// or https://"));
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("`{url}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "`{url}`: no credentials in the URL; the signature authenticates each delivery"
        ));
    }
    if url.len() > 2048 {
        return Err("a webhook URL is at most 2,048 characters".to_owned());
    }
    Ok(uri)
}
